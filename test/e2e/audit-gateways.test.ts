/**
 * ATNA end to end with REAL transactions: consumer → initiating gateway (A) → responding gateway
 * (B) → reference registry / repository / Imaging Document Source, every gateway its own process
 * configured through XCAI_AUDIT_* as in production, auditing over RFC 5425 (mutual TLS) to
 *   - the product's Audit Record Repository: every transaction × side × outcome the gateways write,
 *     plus the security and application records, arrives exactly once and validates against
 *     dicom2017c.xsd; the per-patient report and the chain verifier work on what was written;
 *   - rsyslogd (gtls, x509/name, PermittedPeer): exactly the expected records; rsyslog stopped during
 *     traffic and restarted → every record arrives; a gateway whose certificate is not permitted is
 *     refused and keeps its records;
 *   - nothing (repository down, tiny spool): the gateway fails closed (SOAP Receiver fault, /readyz
 *     unready) and recovers once the repository takes the backlog.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from 'undici';
import {
  Action,
  AUDIT_UNAVAILABLE_REASON,
  encodeEnvelope,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  type DocumentRequest,
  type ImagingRequest,
  encodeFindDocumentsRequest,
  APPROVED_STATUS,
} from '@xcai/shared';
import { loadAuditRecords, parseAuditRecord, type AuditRecordView } from '@xcai/shared/src/audit/report';
import { startAuditRepository, type AuditRepository } from '@xcai/shared/src/audit/repository';
import { parseSyslogMessage } from '@xcai/shared/src/audit/syslog';
import { findRsyslogd, freePort, makeCerts, RsyslogReceiver, waitFor } from '../support/audit';
import { retrieveCall, soapCall } from '../support/client';
import {
  demoSeeds,
  ROOT,
  spawnCommunity,
  type CommunityProcess,
  type Label,
  studyImagingRequest,
} from '../support/federation';
import { xsdErrors } from '../support/xsd';
import { AUDIT_SCHEMA } from '../support/fixtures';
import { buildAssertion, makeIdp, securityHeader, signAssertion, type TestIdp } from '../support/xua';
import { spawnGateway, type GatewayProcess } from '../support/processes';
import { readManifest } from '../../services/reference-community/src/server';
import type { ManifestStudy, SeedManifest } from '../../services/reference-community/src/seed/types';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const TS = ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'];
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

let tmp: string;
let certs: ReturnType<typeof makeCerts>;
let seeds: Record<Label, string>;
let m: Record<Label, SeedManifest>;
let refA: CommunityProcess;
let refB: CommunityProcess;
let deadUrl: string;
let idp: TestIdp;
const home = (k: Label) => m[k].homeCommunityId;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-gw-'));
  certs = makeCerts(path.join(tmp, 'certs'), ['arr', 'gw-a', 'gw-b']);
  idp = makeIdp('Audit Test IdP');
  seeds = await demoSeeds();
  m = { A: readManifest(seeds.A), B: readManifest(seeds.B), C: readManifest(seeds.C) };
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  // Community C's gateway is down: nothing listens there.
  deadUrl = `http://127.0.0.1:${await freePort()}`;
}, 60_000);

afterAll(async () => {
  await Promise.all([refA?.stop(), refB?.stop()]);
  idp?.remove();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- the federation ---------------------------------------------------------------------------

function auditEnv(name: 'gw-a' | 'gw-b', port: number, spoolDir: string): Record<string, string> {
  return {
    XCAI_AUDIT_TRANSPORT: 'tls',
    XCAI_AUDIT_HOST: '127.0.0.1',
    XCAI_AUDIT_PORT: String(port),
    XCAI_AUDIT_TLS_CERT: certs.certs[name]!.certFile,
    XCAI_AUDIT_TLS_KEY: certs.certs[name]!.keyFile,
    XCAI_AUDIT_TLS_CA: path.join(tmp, 'certs', 'ca.crt'),
    XCAI_AUDIT_TLS_SERVERNAME: 'arr',
    XCAI_AUDIT_SPOOL_DIR: spoolDir,
    XCAI_AUDIT_SOURCE_ID: name,
  };
}

/** XUA accepted (optional) at both gateways: an assertion's subject is the human requestor. */
const xua = () => ({
  idpCertificates: [idp.certFile],
  audiences: ['urn:xcai:test:gateways'],
  clockSkewMs: 60_000,
});

const local = (ref: CommunityProcess) => ({
  registry: { url: ref.registry },
  repositories: [{ repositoryUniqueId: ref.repositoryUniqueId, url: ref.repository }],
  imagingDocumentSources: [{ repositoryUniqueId: ref.idsRepositoryUniqueId, url: ref.ids }],
});

function startRgB(env: Record<string, string>): Promise<GatewayProcess> {
  return spawnGateway(
    'responding',
    {
      homeCommunityId: home('B'),
      name: 'B',
      local: local(refB),
      communities: [{ homeCommunityId: home('A'), name: 'A', xua: 'optional' }],
      xua: xua(),
    },
    env,
  );
}

function startIgA(rgUrl: string | undefined, env: Record<string, string>): Promise<GatewayProcess> {
  const remote = (name: string, hc: string, url: string) => ({
    homeCommunityId: hc,
    name,
    endpoints: {
      iti38: { url: `${url}/iti38` },
      iti39: { url: `${url}/iti39` },
      rad75: { url: `${url}/rad75` },
    },
  });
  return spawnGateway(
    'initiating',
    {
      homeCommunityId: home('A'),
      name: 'A',
      deadlineMs: 20_000,
      local: local(refA),
      communities: [...(rgUrl ? [remote('B', home('B'), rgUrl)] : []), remote('C', home('C'), deadUrl)],
      consumers: [{ name: 'PACS', xua: 'optional' }],
      xua: xua(),
    },
    env,
  );
}

// ---- transactions -------------------------------------------------------------------------------

const findDocuments = (patient = PATIENT_1) => encodeFindDocumentsRequest(patient);

function kos(k: Label, patient = PATIENT_1): DocumentRequest[] {
  return m[k].documentEntries
    .filter((d) => d.patientId === patient && d.availabilityStatus === APPROVED_STATUS)
    .map((d) => ({
      homeCommunityId: home(k),
      repositoryUniqueId: d.repositoryUniqueId,
      documentUniqueId: d.uniqueId,
    }));
}

const studyOf = (k: Label, patient = PATIENT_1): ManifestStudy => {
  const s = m[k].patients.find((p) => p.id === patient)?.studies[0];
  if (!s) throw new Error(`no study of ${patient} in ${k}`);
  return s;
};

function studyRequest(k: Label, study: ManifestStudy, extra: string[] = []): ImagingRequest {
  return studyImagingRequest(m[k], study, { ts: TS, extraInFirstSeries: extra });
}

const query = async (ig: GatewayProcess) => {
  const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments());
  expect(a.status).toBe(200);
  return a;
};
const retrieve43 = (ig: GatewayProcess, docs: DocumentRequest[]) =>
  retrieveCall(`${ig.url}/iti43`, Action.ITI43, encodeRetrieveDocumentSetRequest(docs));
const retrieve69 = (ig: GatewayProcess, req: ImagingRequest) =>
  retrieveCall(`${ig.url}/rad69`, Action.RAD69, encodeRetrieveImagingDocumentSetRequest(req));

// ---- records ------------------------------------------------------------------------------------

function arrRecords(dir: string): { id: string; xml: string; peer: string; seq: number }[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n'))
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; xml: string; peer: string; seq: number });
}

const spoolIds = (...dirs: string[]) => dirs.flatMap((d) => loadAuditRecords([d]).map((r) => r.id));

/** A comparable key per record: who wrote it, what, which end it describes, outcome. */
function key(v: AuditRecordView): string {
  if (!v.transaction) return `${v.auditSource} ${v.eventId}/${v.eventTypes.join('+')} ${v.outcome}`;
  return `${v.auditSource} ${v.transaction} ${v.eventId} ${v.respondingSystem?.userId ?? '?'} ${v.outcome}`;
}

function sorted(xs: string[]): string[] {
  return [...xs].sort();
}

const QUERY = '110112';
const EXPORT = '110106';
const IMPORT = '110107';
const TRANSFERRED = '110104';
const ACCESSED = '110103';
const START = '110100/Application Start 0';
const STOP = '110100/Application Stop 0';
const CONFIG = '110113/Software Configuration+Security Configuration+Network Configuration 0';
const REJECTED_ASYNC = '110113/Use of Restricted Function 4';

describe('gateways → product Audit Record Repository (every transaction, both sides, success and failure)', () => {
  let arr: AuditRepository;
  let arrDir: string;
  let spoolA: string;
  let spoolB: string;
  let views: AuditRecordView[] = [];

  it('N real transactions give exactly the expected records at the repository, all valid against dicom2017c.xsd', async () => {
    arrDir = path.join(tmp, 'arr');
    arr = await startAuditRepository({
      dir: arrDir,
      tls: { cert: certs.certs.arr!.cert, key: certs.certs.arr!.key, ca: certs.ca },
      logger: quiet,
    });
    spoolA = path.join(tmp, 'spool-a');
    spoolB = path.join(tmp, 'spool-b');
    const rg = await startRgB(auditEnv('gw-b', arr.port, spoolB));
    const ig = await startIgA(rg.url, auditEnv('gw-a', arr.port, spoolA));
    try {
      // T1 ITI-18 → local ITI-18 + ITI-38 to B and to C (down): PartialSuccess. A clinician's XUA
      // assertion comes with it (relayed to B).
      const t1 = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments(), {
        extraHeaders: securityHeader(signAssertion(buildAssertion({ subjectName: 'Yamada Taro' }), idp)),
      });
      expect(t1.xml).toContain('ResponseStatusType:PartialSuccess');
      // T2 ITI-43: A's and B's manifests plus one unknown document of B: PartialSuccess.
      const unknownDoc = {
        homeCommunityId: home('B'),
        repositoryUniqueId: m.B.repositoryUniqueId,
        documentUniqueId: '1.2.392.999.43',
      };
      const t2 = await retrieve43(ig, [...kos('A'), ...kos('B'), unknownDoc]);
      expect([t2.registryStatus, t2.documents.length]).toEqual([
        'PartialSuccess',
        kos('A').length + kos('B').length,
      ]);
      // T3 RAD-69: a study of A and one of B with an instance B does not have: PartialSuccess.
      const reqA = studyRequest('A', studyOf('A'));
      const reqB = studyRequest('B', studyOf('B'), ['1.2.392.999.69']);
      const t3 = await retrieve69(ig, {
        studies: [...reqA.studies, ...reqB.studies],
        transferSyntaxUids: TS,
      });
      expect(t3.registryStatus).toBe('PartialSuccess');
      // T4 RAD-69 of a study in C (its gateway is down): Failure. T5 the same for ITI-43.
      expect((await retrieve69(ig, studyRequest('C', studyOf('C')))).registryStatus).toBe('Failure');
      expect((await retrieve43(ig, kos('C'))).registryStatus).toBe('Failure');
      // T6 requests refused before their transaction runs (wrong action): at both gateways.
      expect((await soapCall(`${ig.url}/iti18`, Action.ITI38, findDocuments())).status).toBe(400);
      expect((await soapCall(`${rg.url}/iti39`, Action.ITI43, findDocuments())).status).toBe(400);
      // T7 an async response nobody asked for, at the initiating gateway's async endpoint.
      const bogus = encodeEnvelope({
        action: Action.ITI38Response,
        relatesTo: 'urn:uuid:0b6f3a2c-1d4e-4f5a-8b9c-0d1e2f3a4b5c',
        body: '<query:AdhocQueryResponse xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>',
        request: false,
      });
      const t7 = await request(`${ig.url}/async-response`, {
        method: 'POST',
        headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
        body: bogus,
      });
      await t7.body.text();
      expect(t7.statusCode).toBe(400);
    } finally {
      // Graceful stop: Application Stop is recorded and everything spooled is delivered.
      await ig.stop();
      await rg.stop();
    }
    const all = [...spoolIds(spoolA), ...spoolIds(spoolB)];
    await waitFor(() => arr.stats().stored >= all.length, 20_000, 'every spooled record at the repository');
    await arr.close();
    const recs = arrRecords(arrDir);
    // Exactly once each, and exactly what the gateways spooled.
    expect(sorted(recs.map((r) => r.id))).toEqual(sorted(all));
    // Delivered in order: per gateway, the repository stored the chain positions ascending.
    for (const who of ['gw-a', 'gw-b']) {
      const seqs = recs.filter((r) => r.peer.includes(`CN=${who}`)).map((r) => r.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    expect(new Set(recs.map((r) => r.peer.match(/CN=([\w-]+)/)?.[1]))).toEqual(new Set(['gw-a', 'gw-b']));
    views = recs.map((r) => parseAuditRecord(r.id, r.xml)!);

    // The expected records, one line per record (retrieves: one per outcome group).
    const A = 'gw-a';
    const B = 'gw-b';
    const rgB = views
      .find((v) => v.auditSource === B && v.transaction === 'ITI-38')!
      .respondingSystem!.userId.replace(/\/iti38$/, '');
    const igA = views
      .find((v) => v.auditSource === A && v.transaction === 'ITI-18' && v.outcome === 4)!
      .respondingSystem!.userId.replace(/\/iti18$/, '');
    const expected = [
      // T1
      `${A} ITI-18 ${QUERY} ${igA}/iti18 4`,
      `${A} ITI-18 ${QUERY} ${refA.registry} 0`,
      `${A} ITI-38 ${QUERY} ${rgB}/iti38 0`,
      `${A} ITI-38 ${QUERY} ${deadUrl}/iti38 8`,
      `${B} ITI-38 ${QUERY} ${rgB}/iti38 0`,
      `${B} ITI-18 ${QUERY} ${refB.registry} 0`,
      // T2: served and sent, success and failure apart
      `${A} ITI-43 ${EXPORT} ${igA}/iti43 0`,
      `${A} ITI-43 ${EXPORT} ${igA}/iti43 8`,
      `${A} ITI-43 ${IMPORT} ${refA.repository} 0`,
      `${A} ITI-39 ${IMPORT} ${rgB}/iti39 0`,
      `${A} ITI-39 ${IMPORT} ${rgB}/iti39 8`,
      `${B} ITI-39 ${EXPORT} ${rgB}/iti39 0`,
      `${B} ITI-39 ${EXPORT} ${rgB}/iti39 8`,
      `${B} ITI-43 ${IMPORT} ${refB.repository} 0`,
      `${B} ITI-43 ${IMPORT} ${refB.repository} 8`,
      // T3
      `${A} RAD-69 ${TRANSFERRED} ${igA}/rad69 0`,
      `${A} RAD-69 ${TRANSFERRED} ${igA}/rad69 8`,
      `${A} RAD-69 ${ACCESSED} ${refA.ids} 0`,
      `${A} RAD-75 ${ACCESSED} ${rgB}/rad75 0`,
      `${A} RAD-75 ${ACCESSED} ${rgB}/rad75 8`,
      `${B} RAD-75 ${TRANSFERRED} ${rgB}/rad75 0`,
      `${B} RAD-75 ${TRANSFERRED} ${rgB}/rad75 8`,
      `${B} RAD-69 ${ACCESSED} ${refB.ids} 0`,
      `${B} RAD-69 ${ACCESSED} ${refB.ids} 8`,
      // T4, T5: community C down
      `${A} RAD-69 ${TRANSFERRED} ${igA}/rad69 8`,
      `${A} RAD-75 ${ACCESSED} ${deadUrl}/rad75 8`,
      `${A} ITI-43 ${EXPORT} ${igA}/iti43 8`,
      `${A} ITI-39 ${IMPORT} ${deadUrl}/iti39 8`,
      // T6 refused early
      `${A} ITI-18 ${QUERY} ${igA}/iti18 8`,
      `${B} ITI-39 ${EXPORT} ${rgB}/iti39 8`,
      // T7 and the application / configuration records of both processes
      `${A} ${REJECTED_ASYNC}`,
      `${A} ${START}`,
      `${A} ${CONFIG}`,
      `${A} ${STOP}`,
      `${B} ${START}`,
      `${B} ${CONFIG}`,
      `${B} ${STOP}`,
    ];
    expect(sorted(views.map(key))).toEqual(sorted(expected));

    // Every record the gateways wrote validates against the DICOM audit schema.
    expect(
      xsdErrors(
        recs.map((r) => r.xml),
        AUDIT_SCHEMA,
      ),
    ).toBe('');
    console.log(
      `audit e2e: ${recs.length} records from real gateway traffic validated against dicom2017c.xsd ` +
        `(${new Set(views.map((v) => v.transaction).filter(Boolean)).size} transactions, both sides, outcomes ${[...new Set(views.map((v) => v.outcome))].sort().join('/')})`,
    );
  }, 120_000);

  it('the XUA subject and role are the human requestor in the records of that transaction, at both gateways', () => {
    const humans = views.filter((v) => v.transaction && v.users.length > 0);
    // T1: ITI-18 served + to the registry + ITI-38 to B and C at A; ITI-38 served + ITI-18 at B.
    expect(humans.map((v) => `${v.auditSource} ${v.transaction}`).sort()).toEqual(
      ['gw-a ITI-18', 'gw-a ITI-18', 'gw-a ITI-38', 'gw-a ITI-38', 'gw-b ITI-18', 'gw-b ITI-38'].sort(),
    );
    for (const v of humans) {
      expect(v.users).toHaveLength(1);
      expect(v.users[0]).toMatchObject({ userId: 'dr.yamada@hospital-a.example', requestor: true });
      expect(v.users[0]!.roles.join()).toMatch(/Physician/);
    }
  });

  it('retrieve records name the patient the query answer linked (so the per-patient report sees them)', () => {
    const retrieves = views.filter(
      (v) => v.transaction && !['ITI-18', 'ITI-38'].includes(v.transaction) && v.outcome === 0,
    );
    expect(retrieves.length).toBeGreaterThan(0);
    // Gateway A saw the ITI-18 answers; B saw the ITI-38 answers of its registry.
    for (const v of retrieves)
      expect([v.transaction, v.auditSource, v.patients]).toEqual([v.transaction, v.auditSource, [PATIENT_1]]);
  });

  it('the access report (xcai-audit report) lists who accessed the patient, when, from where, with what outcome', () => {
    const out = execFileSync(
      process.execPath,
      [path.join(ROOT, 'shared/bin/xcai-audit.js'), 'report', '--patient', PATIENT_1, '--json', arrDir],
      { encoding: 'utf8' },
    );
    const rows = JSON.parse(out) as AuditRecordView[];
    const txs = new Set(rows.map((r) => r.transaction));
    for (const t of ['ITI-18', 'ITI-38', 'ITI-43', 'ITI-39', 'RAD-69', 'RAD-75']) expect(txs).toContain(t);
    expect(rows.every((r) => r.patients.includes(PATIENT_1))).toBe(true);
    expect(rows.some((r) => r.outcome === 8)).toBe(true);
    expect(rows.some((r) => r.communities.includes(home('B')))).toBe(true);
    const text = execFileSync(
      process.execPath,
      [path.join(ROOT, 'shared/bin/xcai-audit.js'), 'report', '--patient', PATIENT_1, arrDir, spoolA],
      { encoding: 'utf8' },
    );
    expect(text).toContain(`Access history of patient ${PATIENT_1}`);
    expect(text).toContain('Yamada Taro [Physician]'); // who: the XUA subject and role
    expect(text).toMatch(/RAD-69 +DICOM Instances Transferred\/R +success/);
  });

  it('verify: the spools of both gateways verify; a tampered record is detected and named', () => {
    const verify = (dir: string) => {
      try {
        return {
          code: 0,
          out: execFileSync(process.execPath, [path.join(ROOT, 'shared/bin/xcai-audit.js'), 'verify', dir], {
            encoding: 'utf8',
          }),
        };
      } catch (e) {
        const err = e as { status: number; stdout: string };
        return { code: err.status, out: err.stdout };
      }
    };
    expect(verify(spoolA)).toMatchObject({ code: 0, out: expect.stringMatching(/^OK: \d+ record/) });
    expect(verify(spoolB).code).toBe(0);
    // An insider changes the outcome of a retrieve record in gateway A's spool.
    const seg = fs.readdirSync(spoolA).find((f) => f.startsWith('seg-'))!;
    const file = path.join(spoolA, seg);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('EventOutcomeIndicator=\\"8\\"'));
    expect(i).toBeGreaterThan(0);
    lines[i] = lines[i]!.replace('EventOutcomeIndicator=\\"8\\"', 'EventOutcomeIndicator=\\"0\\"');
    fs.writeFileSync(file, lines.join('\n'));
    const r = verify(spoolA);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`TAMPERED OR DAMAGED: record ${i + 1}`);
  });
});

const rsyslogd = findRsyslogd();
if (!rsyslogd)
  console.warn(
    'SKIPPING the rsyslog part: rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)',
  );
(rsyslogd ? describe : describe.skip)('gateways → rsyslog (real RFC 5425 receiver)', () => {
  let rs: RsyslogReceiver;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    // Only gateway A's certificate is a permitted peer (x509/name); B's is from the same CA but not permitted.
    rs = new RsyslogReceiver(
      path.join(tmp, 'rsyslog'),
      port,
      {
        ca: path.join(tmp, 'certs', 'ca.crt'),
        cert: certs.certs.arr!.certFile,
        key: certs.certs.arr!.keyFile,
      },
      ['gw-a'],
    );
    await rs.start(rsyslogd as string);
  });
  afterAll(() => rs?.stop());

  const received = () =>
    rs.lines().map((l) => {
      const p = parseSyslogMessage(l);
      const sd = p.sd['xcai@32473']!;
      return { id: sd.id!, seq: Number(sd.seq), xml: p.msg, host: p.hostname, app: p.appName };
    });

  it('N transactions → exactly the records gateway A spooled; rsyslog stopped and restarted during traffic → all arrive; B (not permitted) is refused', async () => {
    const spoolA = path.join(tmp, 'rs-spool-a');
    const spoolB = path.join(tmp, 'rs-spool-b');
    const rg = await startRgB(auditEnv('gw-b', port, spoolB));
    const ig = await startIgA(rg.url, {
      ...auditEnv('gw-a', port, spoolA),
      XCAI_AUDIT_SOURCE_ID: 'gw-a-rsyslog',
    });
    const mine = () => {
      const ids = new Set(spoolIds(spoolA));
      return received().filter((r) => ids.has(r.id));
    };
    try {
      const round = async () => {
        await query(ig);
        await retrieve43(ig, [...kos('A'), ...kos('B')]);
        await retrieve69(ig, studyRequest('B', studyOf('B')));
      };
      for (let i = 0; i < 3; i++) await round();
      await waitFor(() => mine().length > 0, 30_000, 'first records at rsyslog');
      await rs.stop();
      for (let i = 0; i < 3; i++) await round(); // the repository is down: the gateway keeps serving
      await rs.start(rsyslogd as string);
      for (let i = 0; i < 2; i++) await round();
      await waitFor(
        () => new Set(mine().map((r) => r.id)).size >= new Set(spoolIds(spoolA)).size,
        60_000,
        'every record of gateway A after the restart',
      );
    } finally {
      await ig.stop();
    }
    await waitFor(
      () => new Set(mine().map((r) => r.id)).size >= new Set(spoolIds(spoolA)).size,
      30_000,
      'stop records',
    );
    const got = mine();
    expect(new Set(got.map((r) => r.id))).toEqual(new Set(spoolIds(spoolA)));
    // 8 rounds × (ITI-18 served + ITI-18 local + ITI-38 to B and to C; ITI-43 served + ITI-43 local
    // + ITI-39 to B; RAD-69 served + RAD-75 to B) + start, configuration, stop.
    expect(new Set(spoolIds(spoolA)).size).toBe(8 * 9 + 3);
    expect(got.every((r) => r.app === 'xcai-initiating-gateway')).toBe(true);
    // In order: apart from resent duplicates, each record arrives after the one before it.
    const firstSeen: number[] = [];
    const seen = new Set<string>();
    for (const r of got) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      firstSeen.push(r.seq);
    }
    expect(firstSeen).toEqual([...firstSeen].sort((x, y) => x - y));
    expect(xsdErrors([...new Map(got.map((r) => [r.id, r.xml])).values()], AUDIT_SCHEMA)).toBe('');
    console.log(
      `rsyslog e2e: ${got.length - new Set(got.map((r) => r.id)).size} duplicate(s) after the outage (de-dup by record id)`,
    );

    // Gateway B's certificate is not permitted: nothing of B at rsyslog, B keeps its records spooled.
    const metrics = async () => await (await request(`${rg.mgmtUrl}/metrics`)).body.text();
    const depth = async () =>
      Number(/^xcai_audit_spool_depth(?:\{[^}]*\})? (\d+)/m.exec(await metrics())?.[1] ?? -1);
    expect(await depth()).toBeGreaterThan(0);
    const bIds = new Set(spoolIds(spoolB));
    expect(received().filter((r) => bIds.has(r.id))).toEqual([]);
    expect(rg.output.join('')).toContain('records stay spooled');
    await rg.stop();
  }, 180_000);
});

describe('fail closed: repository unreachable and the spool full', () => {
  it('refuses transactions with a SOAP Receiver fault and goes unready; recovers when the repository takes the backlog', async () => {
    const port = await freePort(); // no repository there yet
    const spool = path.join(tmp, 'full-spool');
    const ig = await startIgA(undefined, {
      ...auditEnv('gw-a', port, spool),
      XCAI_AUDIT_MAX_SPOOL_BYTES: '24KiB',
    });
    let arr: AuditRepository | undefined;
    try {
      const ready = async () => {
        const r = await request(`${ig.mgmtUrl}/readyz`);
        return { status: r.statusCode, body: await r.body.text() };
      };
      expect((await ready()).status).toBe(200);
      // Each query writes ~4 records of a few KiB; soon the undelivered bytes reach the bound.
      let refused: Awaited<ReturnType<typeof soapCall>> | undefined;
      for (let i = 0; i < 50 && !refused; i++) {
        const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments());
        if (a.status !== 200) refused = a;
      }
      expect(refused).toBeDefined();
      expect(refused!.status).toBe(500);
      expect(refused!.xml).toContain('soap:Receiver');
      expect(refused!.xml).toContain(AUDIT_UNAVAILABLE_REASON);
      expect((await ready()).status).toBe(503);
      const detail = (await ready()).body;
      expect(JSON.parse(detail)).toMatchObject({ ready: false });
      expect(detail).toMatch(/"audit":\{"status":"unready"/);
      expect(ig.output.join('')).toContain('spool FULL');
      // The repository comes up: the backlog drains, the gateway serves again and is ready.
      arr = await startAuditRepository({
        port,
        dir: path.join(tmp, 'full-arr'),
        tls: { cert: certs.certs.arr!.cert, key: certs.certs.arr!.key, ca: certs.ca },
        logger: quiet,
      });
      const a = arr;
      await waitFor(() => a.stats().stored > 0, 60_000, 'the backlog at the repository');
      let ok = false;
      for (let i = 0; i < 600 && !ok; i++) {
        ok = (await ready()).status === 200;
        if (!ok) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ok).toBe(true);
      expect((await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments())).status).toBe(200);
    } finally {
      await ig.stop();
      await arr?.close();
    }
  }, 120_000);
});
