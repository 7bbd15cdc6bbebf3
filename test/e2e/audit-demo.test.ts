/**
 * The `npm start` demo federation audits to its own Audit Record Repository: the consumer's
 * ITI-18 → ITI-43 → RAD-69 leaves records of every gateway (both ends of ITI-55, ITI-38/39 and
 * RAD-75, and the ITI-47 each gateway sent its MPI) in $DEMO_AUDIT_DIR, named in the endpoints JSON;
 * the per-patient report (`npm run audit -- report`) reads them, following the patient's ids in B
 * and C that the ITI-55 records correlate; every record validates against dicom2017c.xsd; a
 * graceful stop delivers the Application Stop records too. The consumer runs twice: the second
 * time the initiating gateway's cached correlations answer (no ITI-47, no ITI-55 on the wire).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAuditRecords, parseAuditRecord, type AuditRecordView } from '@xcai/shared/src/audit/report';
import { ROOT } from '../support/federation';
import { runScript, startDemo } from '../support/demo';
import { xsdErrors } from '../support/xsd';
import { AUDIT_SCHEMA } from '../support/fixtures';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';

let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-demo-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

it('npm start: every gateway audits to the demo repository; the report and the verifier work on it', async () => {
  const auditDir = path.join(tmp, 'arr-records');
  const demo = await startDemo(tmp, { DEMO_AUDIT_DIR: auditDir });
  const endpoints = demo.endpoints;
  expect(endpoints.auditDir).toBe(auditDir);
  expect(endpoints.auditRepository).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
  expect(Object.keys(endpoints.auditSpools ?? {}).sort()).toEqual([
    'initiating-gateway-A',
    'responding-gateway-B',
    'responding-gateway-C',
  ]);

  // The PACS of community A: query, the KOS manifests, then every image — twice.
  for (const run of ['images', 'images-again']) {
    const consumer = await runScript(
      path.join(ROOT, 'services/reference-community/dist/demo/consumer.js'),
      ['--patient', PATIENT, '--out', path.join(tmp, run)],
      demo.env,
    );
    expect(consumer.code).toBe(0);
  }

  // Graceful stop: gateways first (their last records, Application Stop, are delivered), then the repository.
  expect(await demo.stop()).toBe(0);

  const spools = Object.values(endpoints.auditSpools ?? {});
  const spooled = loadAuditRecords(spools);
  const stored = loadAuditRecords([auditDir]);
  // One record per line in the repository's folder; exactly what the gateways spooled, each once.
  const lines = fs
    .readdirSync(auditDir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(auditDir, f), 'utf8').split('\n').filter(Boolean));
  expect(lines).toHaveLength(stored.length);
  expect(stored.map((r) => r.id).sort()).toEqual(spooled.map((r) => r.id).sort());
  expect(
    xsdErrors(
      stored.map((r) => r.xml),
      AUDIT_SCHEMA,
    ),
  ).toBe('');

  const views = stored.map((r) => parseAuditRecord(r.id, r.xml)!);
  const by = (src: string) => views.filter((v) => v.auditSource === src);
  const kinds = (vs: AuditRecordView[]) =>
    [...new Set(vs.map((v) => v.transaction ?? v.eventTypes[0] ?? ''))].sort();
  const everyGateway = [
    'Application Start',
    'Application Stop',
    'ITI-18',
    'ITI-38',
    'ITI-39',
    'ITI-43',
    'ITI-47',
    'ITI-55',
    'RAD-69',
    'RAD-75',
    'Software Configuration',
  ].sort();
  for (const gw of ['initiating-gateway-A', 'responding-gateway-B', 'responding-gateway-C'])
    expect(kinds(by(gw))).toEqual(everyGateway);
  // Patient discovery happened once, for the first run: one ITI-47, one ITI-55 per community.
  const count = (src: string, tx: string) => by(src).filter((v) => v.transaction === tx).length;
  expect(count('initiating-gateway-A', 'ITI-47')).toBe(1);
  expect(count('initiating-gateway-A', 'ITI-55')).toBe(2);
  expect(count('initiating-gateway-A', 'ITI-18')).toBe(4); // served + to our registry, per run
  for (const rg of ['responding-gateway-B', 'responding-gateway-C']) {
    expect(count(rg, 'ITI-55')).toBe(1);
    expect(count(rg, 'ITI-38')).toBe(2);
  }
  // The responding gateways name the initiating gateway by the certificate it authenticated with.
  const served38 = by('responding-gateway-B').find((v) => v.transaction === 'ITI-38')!;
  expect(served38.requestingSystem?.userName).toContain('CN=gw-a');

  // The per-patient access report, as an operator runs it: `npm run audit -- report …`.
  const report = execFileSync(
    'npm',
    ['run', '--silent', 'audit', '--', 'report', '--patient', PATIENT, '--json', auditDir],
    {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const rows = JSON.parse(report) as AuditRecordView[];
  expect(new Set(rows.map((r) => r.transaction))).toEqual(
    new Set(['ITI-18', 'ITI-38', 'ITI-43', 'ITI-39', 'ITI-47', 'ITI-55', 'RAD-69', 'RAD-75']),
  );
  // Under A's id or the ids B and C gave it (correlated by the ITI-55 records).
  const person = endpoints.patients.find((p) => p.id === PATIENT)!;
  const ids = Object.values(person.ids);
  expect(ids).toHaveLength(3);
  expect(rows.every((r) => r.outcome === 0 && r.patients.some((p) => ids.includes(p)))).toBe(true);
  // The responding gateways' own records name the patient by their own ids only.
  expect(
    rows
      .filter((r) => r.auditSource === 'responding-gateway-B' && r.transaction === 'ITI-38')
      .map((r) => r.patients),
  ).toEqual([[person.ids.B], [person.ids.B]]);
  // Who accessed the images of each community: both ends of RAD-75, by community.
  const rad75 = rows.filter((r) => r.transaction === 'RAD-75');
  const homes = endpoints.communities.filter((c) => c.label !== 'A').map((c) => c.homeCommunityId);
  for (const h of homes) expect(rad75.filter((r) => r.communities.includes(h))).toHaveLength(4);

  // Every gateway's spool verifies.
  for (const dir of spools) {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'shared/bin/xcai-audit.js'), 'verify', dir], {
      encoding: 'utf8',
    });
    expect(out).toMatch(/^OK: /);
  }
  console.log(
    `demo audit: ${stored.length} records from 3 gateways at the demo repository, all valid against dicom2017c.xsd; ` +
      `${rows.length} rows in the access report of ${PATIENT}`,
  );
}, 240_000);
