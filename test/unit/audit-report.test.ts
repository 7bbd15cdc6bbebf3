import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '@xcai/shared/src/audit/cli';
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import { buildAccessReport, patientMatches, type AuditRecordView } from '@xcai/shared/src/audit/report';
import { createAuditSink } from '@xcai/shared/src/audit/sink';
import { listSegments, segmentName, type SpoolRecord } from '@xcai/shared/src/audit/spool';
import { sampleSecurityEvents, sampleTransactionEvent, SAMPLE_HOME } from '../support/audit';

const A = 'PAT-A^^^&1.2.392.200119.6.102.1&ISO';
const B = 'PAT-B^^^&1.2.392.200119.6.102.1&ISO';
let tmp: string;
let spoolDir: string;
let arrDir: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-report-'));
  spoolDir = path.join(tmp, 'spool');
  arrDir = path.join(tmp, 'arr');
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const sink = createAuditSink({
    transport: 'none',
    spoolDir,
    source: { auditSourceId: 'gw-a' },
    logger: quiet,
  });
  // Recorded out of time order on purpose (n sets the second of the event time).
  sink.record(sampleTransactionEvent('RAD-75', 'responder', 'partial', 30, A));
  sink.record(sampleTransactionEvent('ITI-38', 'requester', 'success', 10, A));
  sink.record(sampleTransactionEvent('ITI-43', 'responder', 'success', 20, B));
  sink.record(sampleTransactionEvent('ITI-39', 'requester', 'failure', 40, A));
  for (const e of sampleSecurityEvents()) sink.record(e);
  await sink.close();
  // An ARR directory holding a copy of one record (same id) and one record only the ARR has.
  const first = listSegments(spoolDir)[0]!;
  const recs = fs
    .readFileSync(path.join(spoolDir, segmentName(first)), 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as SpoolRecord);
  fs.mkdirSync(arrDir);
  const other = buildAuditMessages(
    sampleTransactionEvent('ITI-18', 'responder', 'success', 50, 'PAT-A^^^&1.2.392.200119.6.102.1&ISO'),
    { auditSourceId: 'registry-x' },
  )[0]!;
  fs.writeFileSync(
    path.join(arrDir, 'audit-20250115.jsonl'),
    [
      { id: recs[0]!.id, received: 'now', peer: 'CN=gw-a', xml: recs[0]!.xml },
      { id: 'arr-only-1', received: 'now', peer: 'CN=registry-x', xml: other },
    ]
      .map((r) => `${JSON.stringify(r)}\n`)
      .join(''),
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('per-patient access report (R16)', () => {
  test('CX matching on id and assigning authority', () => {
    expect(patientMatches(A, A)).toBe(true);
    expect(patientMatches('PAT-A', A)).toBe(true);
    expect(patientMatches('PAT-A^^^&1.2.3&ISO', A)).toBe(false);
    expect(patientMatches(B, A)).toBe(false);
  });

  test('who, when, which transaction, community, objects and outcome, time-ordered and de-duplicated', () => {
    const rows = buildAccessReport([spoolDir, arrDir], { patient: A });
    // RAD-75 partial gives two records (one per outcome class).
    expect(rows.map((r) => `${r.transaction} ${r.outcome}`)).toEqual([
      'ITI-38 0',
      'RAD-75 0',
      'RAD-75 4',
      'ITI-39 8',
      'ITI-18 0',
    ]);
    const times = rows.map((r) => Date.parse(r.time));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    const rad = rows[1] as AuditRecordView;
    expect(rad.users.map((u) => u.userId)).toEqual(['dr-30@idp.example']);
    expect(rad.users[0]!.roles).toEqual(['Physician']);
    expect(rad.requestingSystem?.userId).toBe('http://www.w3.org/2005/08/addressing/anonymous');
    expect(rad.respondingSystem?.userId).toBe('https://gw-responding.example:8443/rad-75');
    expect(rad.communities).toEqual([SAMPLE_HOME]);
    expect(rad.studies).toEqual(['1.2.392.200119.6.102.2.30.1']);
    expect(rows[2]!.outcomeDescription).toMatch(/XDSDocumentUniqueIdError/);
    expect(rows[0]!.queries).toEqual(['urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d']);
    expect(rows[3]!.documents).toEqual(['1.2.392.200119.6.102.1.40.1']);
    expect(rows.every((r) => r.patients.includes(A) || r.auditSource === 'registry-x')).toBe(true);
    expect(buildAccessReport([spoolDir], { patient: B }).map((r) => r.transaction)).toEqual(['ITI-43']);
  });

  test('period filter', () => {
    const rows = buildAccessReport([spoolDir], {
      patient: A,
      from: new Date('2025-01-15T09:30:20Z'),
      to: new Date('2025-01-15T09:30:35Z'),
    });
    expect(rows.map((r) => r.transaction)).toEqual(['RAD-75', 'RAD-75']);
  });

  test('CLI: text table and --json; security view', () => {
    let out = '';
    expect(main(['report', '--patient', A, spoolDir, arrDir], (s) => (out += s))).toBe(0);
    expect(out).toMatch(/^Access history of patient PAT-A/);
    expect(out).toMatch(/time\s+transaction\s+event\s+outcome\s+user/);
    expect(out).toContain('Dr. Test <30> [Physician]');
    expect(out).toMatch(/5 record\(s\), 4 distinct user\(s\)/);
    out = '';
    expect(main(['report', '--json', '--patient', 'PAT-B', spoolDir], (s) => (out += s))).toBe(0);
    const json = JSON.parse(out) as AuditRecordView[];
    expect(json).toHaveLength(1);
    expect(json[0]).toMatchObject({ transaction: 'ITI-43', eventId: '110106', action: 'R' });
    out = '';
    expect(main(['report', '--security', spoolDir], (s) => (out += s))).toBe(0);
    expect(out).toMatch(/Security Alert/);
    expect(out).toMatch(/Application Activity/);
    // The sample security events, the break-glass alert (it names a patient) among them.
    expect(out).toMatch(/Emergency Override Started BREAK-GLASS/);
    expect(out).toMatch(/6 record\(s\)/);
    expect(main(['report', spoolDir], () => undefined)).toBe(2);
    expect(main(['nonsense'], () => undefined)).toBe(2);
  });
});
