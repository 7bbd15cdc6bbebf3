/**
 * ITI-43 → ITI-39 and RAD-69 → RAD-75 end to end: consumer → initiating gateway (A) → responding
 * gateways (B, C) → reference repositories and Imaging Document Sources in their own processes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Action,
  createLogger,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  type DocumentRequest,
  type ImagingRequest,
  type RunningGateway,
  encodeFindDocumentsRequest,
  APPROVED_STATUS,
} from '@xcai/shared';
import { retrieveCall, soapCall, type RetrieveAnswerForTest } from '../support/client';
import {
  demoSeeds,
  igDirectoryFor,
  MemoryAuditSink,
  remoteCommunity,
  rgDirectoryFor,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
  type Label,
  studyImagingRequest,
} from '../support/federation';
import { deIncludeXop, xsdErrors } from '../support/xsd';
import { readManifest } from '../../services/reference-community/src/server';
import type { ManifestStudy, SeedManifest } from '../../services/reference-community/src/seed/types';

const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';
const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const PATIENT_2 = 'JP1002^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';

let seeds: Record<Label, string>;
let m: Record<Label, SeedManifest>;
const refs = {} as Record<Label, CommunityProcess>;
let refBad: CommunityProcess;
let rgB: RunningGateway, rgC: RunningGateway, rgBad: RunningGateway;
let ig: RunningGateway;
const audit = new MemoryAuditSink();
const stops: (() => Promise<void>)[] = [];

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const home = (k: Label) => m[k].homeCommunityId;
const studiesOf = (k: Label, patient: string): ManifestStudy[] =>
  m[k].patients.find((p) => p.id === patient)?.studies ?? [];

function kosRequests(k: Label, patient: string): DocumentRequest[] {
  return m[k].documentEntries
    .filter((d) => d.patientId === patient && d.availabilityStatus === APPROVED_STATUS)
    .map((d) => ({
      homeCommunityId: home(k),
      repositoryUniqueId: d.repositoryUniqueId,
      documentUniqueId: d.uniqueId,
    }));
}

/** A RAD-69 request for every instance of a study, as a consumer builds it from the KOS. */
function studyRequest(k: Label, study: ManifestStudy, ts = [EXPLICIT, IMPLICIT]): ImagingRequest {
  return studyImagingRequest(m[k], study, { ts });
}

function merge(...reqs: ImagingRequest[]): ImagingRequest {
  return { studies: reqs.flatMap((r) => r.studies), transferSyntaxUids: reqs[0].transferSyntaxUids };
}

function instanceFile(k: Label, sop: string): Buffer {
  for (const p of m[k].patients)
    for (const s of p.studies)
      for (const r of s.series)
        for (const i of r.instances)
          if (i.sopInstanceUid === sop) return readFileSync(join(seeds[k], i.path));
  throw new Error(`no instance ${sop}`);
}

function expectValid(a: RetrieveAnswerForTest): void {
  expect(a.status).toBe(200);
  expect(xsdErrors([deIncludeXop(a.rootXml)])).toBe('');
}

beforeAll(async () => {
  seeds = await demoSeeds();
  m = { A: readManifest(seeds.A), B: readManifest(seeds.B), C: readManifest(seeds.C) };
  const corruptKos = kosRequests('B', PATIENT_2)[0].documentUniqueId;
  const truncated = studiesOf('C', PATIENT_2)[0].series[0].instances[1].sopInstanceUid;
  [refs.A, refs.B, refs.C, refBad] = await Promise.all([
    spawnCommunity([seeds.A]),
    spawnCommunity([seeds.B]),
    spawnCommunity([seeds.C], { truncate: [truncated] }),
    spawnCommunity([seeds.B], { corrupt: [corruptKos] }),
  ]);
  stops.push(refs.A.stop, refs.B.stop, refs.C.stop, refBad.stop);
  const initiators = [{ homeCommunityId: home('A'), name: 'A' }];
  [rgB, rgC, rgBad] = await Promise.all([
    startRG(rgDirectoryFor(refs.B, initiators)),
    startRG(rgDirectoryFor(refs.C, initiators)),
    startRG(rgDirectoryFor(refBad, initiators)),
  ]);
  stops.push(rgB.close, rgC.close, rgBad.close);
  ig = await startIG(
    igDirectoryFor(refs.A, [
      remoteCommunity('B', home('B'), rgB.url),
      remoteCommunity('C', home('C'), rgC.url, { maxDocumentsPerRequest: 4 }),
    ]),
    {
      audit,
      limits: { lookaheadBytes: 256 * 1024 },
      log: process.env.DBG ? createLogger({}, 'debug') : undefined,
    },
  );
  stops.push(ig.close);
  // A consumer queries first; the gateway keeps the registered hash/size of what it saw.
  const q = encodeFindDocumentsRequest(PATIENT_1);
  expect((await soapCall(`${ig.url}/iti18`, Action.ITI18, q)).status).toBe(200);
}, 60_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

describe('ITI-43 at the initiating gateway (ITI-39 to other communities)', () => {
  it('fetches the KOS manifests of every community, byte-exact, each with its home', async () => {
    const reqs = [
      ...kosRequests('A', PATIENT_1),
      ...kosRequests('B', PATIENT_1),
      ...kosRequests('C', PATIENT_1),
    ];
    const a = await retrieveCall(`${ig.url}/iti43`, Action.ITI43, encodeRetrieveDocumentSetRequest(reqs));
    expectValid(a);
    expect(a.envelope.wsa.action).toBe(Action.ITI43Response);
    expect(a.registryStatus).toBe('Success');
    expect(a.errors).toEqual([]);
    expect(a.documents).toHaveLength(reqs.length);
    for (const d of a.documents) {
      const k = (['A', 'B', 'C'] as Label[]).find((x) => home(x) === d.homeCommunityId) as Label;
      const entry = m[k].documentEntries.find((e) => e.uniqueId === d.documentUniqueId);
      expect(entry).toBeDefined();
      expect([sha1(d.bytes), d.bytes.length]).toEqual([entry?.hash, entry?.size]);
      expect(d.mimeType).toBe('application/dicom');
    }
  });

  it('withholds a document whose SHA-1 differs from the registered hash, naming it', async () => {
    const g = await startIG(igDirectoryFor(refs.A, [remoteCommunity('B', home('B'), rgBad.url)]));
    try {
      for (const p of [PATIENT_2, PATIENT_1]) {
        const q = encodeFindDocumentsRequest(p);
        await soapCall(`${g.url}/iti18`, Action.ITI18, q);
      }
      const reqs = [...kosRequests('B', PATIENT_2), ...kosRequests('B', PATIENT_1)];
      expect(reqs.length).toBeGreaterThan(1);
      const a = await retrieveCall(`${g.url}/iti43`, Action.ITI43, encodeRetrieveDocumentSetRequest(reqs));
      expectValid(a);
      expect(a.registryStatus).toBe('PartialSuccess');
      expect(a.documents.map((d) => d.documentUniqueId)).not.toContain(reqs[0].documentUniqueId);
      expect(a.documents).toHaveLength(reqs.length - 1);
      expect(a.errors).toHaveLength(1);
      expect(a.errors[0].errorCode).toBe('XDSRepositoryError');
      expect(a.errors[0].codeContext).toContain(reqs[0].documentUniqueId);
      expect(a.errors[0].codeContext).toMatch(/SHA-1/);
    } finally {
      await g.close();
    }
  });

  it('reports unknown communities and repositories per document and still delivers the rest', async () => {
    const good = kosRequests('B', PATIENT_1);
    const reqs: DocumentRequest[] = [
      ...good,
      { homeCommunityId: 'urn:oid:1.2.3.999', repositoryUniqueId: '1.2.3', documentUniqueId: '1.2.3.4' },
      { repositoryUniqueId: '9.9.9', documentUniqueId: '1.2.3.5' },
    ];
    const a = await retrieveCall(`${ig.url}/iti43`, Action.ITI43, encodeRetrieveDocumentSetRequest(reqs));
    expectValid(a);
    expect(a.registryStatus).toBe('PartialSuccess');
    expect(a.documents).toHaveLength(good.length);
    // ITI-43 at the initiating gateway: located at the community concerned (ours for a document
    // without HomeCommunityId whose repository is not ours: XDSMissingHomeCommunityId, ITI TF-2 3.43.4.1.2)
    expect(a.errors.map((e) => [e.errorCode, e.location]).sort()).toEqual([
      ['XDSMissingHomeCommunityId', home('A')],
      ['XDSUnknownCommunity', 'urn:oid:1.2.3.999'],
    ]);
  });

  it('gives Failure when nothing can be delivered', async () => {
    const a = await retrieveCall(
      `${ig.url}/iti43`,
      Action.ITI43,
      encodeRetrieveDocumentSetRequest([
        {
          homeCommunityId: home('B'),
          repositoryUniqueId: m.B.repositoryUniqueId,
          documentUniqueId: '1.2.3.4.5.6',
        },
      ]),
    );
    expectValid(a);
    expect(a.registryStatus).toBe('Failure');
    expect(a.errors.map((e) => e.errorCode)).toEqual(['XDSDocumentUniqueIdError']);
    expect(a.documents).toEqual([]);
  });
});

describe('ITI-39 and RAD-75 at the responding gateway', () => {
  it('requires HomeCommunityId in every ITI-39 DocumentRequest and stamps it on every DocumentResponse', async () => {
    const [first, second] = kosRequests('B', PATIENT_1).concat(kosRequests('B', PATIENT_2));
    const a = await retrieveCall(
      `${rgB.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest([
        first,
        { ...second, homeCommunityId: undefined },
        { ...second, homeCommunityId: home('C') },
      ]),
    );
    expectValid(a);
    expect(a.envelope.wsa.action).toBe(Action.ITI39Response);
    expect(a.registryStatus).toBe('PartialSuccess');
    expect(a.documents.map((d) => [d.documentUniqueId, d.homeCommunityId])).toEqual([
      [first.documentUniqueId, home('B')],
    ]);
    expect(a.errors.map((e) => e.errorCode).sort()).toEqual([
      'XDSMissingHomeCommunityId',
      'XDSUnknownCommunity',
    ]);
  });

  it('requires HomeCommunityId on RAD-75 and keeps the Study/Series nesting toward the Imaging Document Source', async () => {
    const study = studiesOf('B', PATIENT_1)[0];
    const req = studyRequest('B', study);
    req.studies[0].series[0].documents[0].homeCommunityId = undefined;
    const a = await retrieveCall(
      `${rgB.url}/rad75`,
      Action.RAD75,
      encodeRetrieveImagingDocumentSetRequest(req),
    );
    expectValid(a);
    expect(a.envelope.wsa.action).toBe(Action.RAD75Response);
    expect(a.registryStatus).toBe('PartialSuccess');
    expect(a.errors.map((e) => e.errorCode)).toEqual(['XDSMissingHomeCommunityId']);
    const all = study.series.flatMap((s) => s.instances);
    expect(a.documents).toHaveLength(all.length - 1);
    expect(
      a.documents.every((d) => d.homeCommunityId === home('B') && d.mimeType === 'application/dicom'),
    ).toBe(true);
  });
});

describe('RAD-69 at the initiating imaging gateway (RAD-75 to other communities)', () => {
  it('streams every instance of studies in two communities, byte-identical (Japanese names included)', async () => {
    const sB = studiesOf('B', PATIENT_1)[0];
    const sC = studiesOf('C', PATIENT_1)[0];
    const req = merge(studyRequest('B', sB), studyRequest('C', sC));
    const a = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(req),
    );
    expectValid(a);
    expect(a.truncated).toBeUndefined();
    expect(a.registryStatus).toBe('Success');
    const expected = [...sB.series, ...sC.series].flatMap((s) => s.instances);
    expect(a.documents).toHaveLength(expected.length);
    for (const d of a.documents) {
      const k: Label = d.homeCommunityId === home('B') ? 'B' : 'C';
      expect(d.bytes.equals(instanceFile(k, d.documentUniqueId))).toBe(true);
    }
    // ISO 2022 IR 87 person name bytes (ESC $ B …) arrive untouched
    expect(a.documents.some((d) => d.bytes.includes(Buffer.from([0x1b, 0x24, 0x42])))).toBe(true);
  });

  it('gives PartialSuccess when an instance is missing in one community, naming it', async () => {
    const sB = studiesOf('B', PATIENT_1)[0];
    const reqB = studyRequest('B', sB);
    const reqC = studyRequest('C', studiesOf('C', PATIENT_1)[0]);
    reqC.studies[0].series[0].documents.push({
      homeCommunityId: home('C'),
      repositoryUniqueId: m.C.idsRepositoryUniqueId,
      documentUniqueId: '1.2.392.999.1',
    });
    const a = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(merge(reqB, reqC)),
    );
    expectValid(a);
    expect(a.registryStatus).toBe('PartialSuccess');
    expect(a.errors.map((e) => [e.errorCode, e.location])).toEqual([
      ['XDSDocumentUniqueIdError', '1.2.392.999.1'],
    ]);
    expect(a.documents.length).toBe(
      sB.series.flatMap((s) => s.instances).length +
        reqC.studies[0].series.flatMap((s) => s.documents).length -
        1,
    );
  });

  it('relays XDSRepositoryError when no requested transfer syntax is available (no transcoding)', async () => {
    const study = studiesOf('B', PATIENT_1)[0];
    const a = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(studyRequest('B', study, ['1.2.840.10008.1.2.4.70'])),
    );
    expectValid(a);
    expect(a.registryStatus).toBe('Failure');
    expect(a.documents).toEqual([]);
    const n = study.series.flatMap((s) => s.instances).length;
    expect(a.errors).toHaveLength(n);
    expect(a.errors.every((e) => e.errorCode === 'XDSRepositoryError')).toBe(true);
  });

  it('reports unknown communities per instance', async () => {
    const req = studyRequest('B', studiesOf('B', PATIENT_1)[0]);
    const unknown = req.studies[0].series[0].documents[0];
    unknown.homeCommunityId = 'urn:oid:1.2.3.4.5.999';
    const a = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(req),
    );
    expectValid(a);
    expect(a.registryStatus).toBe('PartialSuccess');
    // RAD-69: located at the instance (RAD TF-3 4.69.5), the community named in codeContext
    expect(a.errors.map((e) => [e.errorCode, e.location])).toEqual([
      ['XDSUnknownCommunity', unknown.documentUniqueId],
    ]);
    expect(a.errors[0].codeContext).toContain('urn:oid:1.2.3.4.5.999');
  });

  it('refuses an empty transfer syntax list and empty UIDs with a RegistryError', async () => {
    const req = studyRequest('B', studiesOf('B', PATIENT_1)[0], []);
    const a = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(req),
    );
    expect(a.registryStatus).toBe('Failure');
    expect(a.errors[0].codeContext).toMatch(/TransferSyntaxUIDList/);
    const req2 = studyRequest('B', studiesOf('B', PATIENT_1)[0]);
    req2.studies[0].studyInstanceUid = '';
    const b = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(req2),
    );
    expect(b.registryStatus).toBe('Failure');
    expect(b.errors[0].codeContext).toMatch(/empty studyInstanceUID/);
  });

  it('reports the instances of a truncated MTOM answer and delivers the others', async () => {
    const sC = studiesOf('C', PATIENT_2)[0];
    const broken = sC.series[0].instances[1].sopInstanceUid;
    const g = await startIG(igDirectoryFor(refs.A, [remoteCommunity('C', home('C'), rgC.url)]));
    try {
      const a = await retrieveCall(
        `${g.url}/rad69`,
        Action.RAD69,
        encodeRetrieveImagingDocumentSetRequest(studyRequest('C', sC)),
      );
      expectValid(a);
      expect(a.truncated).toBeUndefined();
      expect(a.registryStatus).toBe('PartialSuccess');
      expect(a.documents.map((d) => d.documentUniqueId)).toEqual([sC.series[0].instances[0].sopInstanceUid]);
      expect(a.documents[0].bytes.equals(instanceFile('C', a.documents[0].documentUniqueId))).toBe(true);
      expect(a.errors.some((e) => e.codeContext.includes(broken))).toBe(true);
    } finally {
      await g.close();
    }
  });

  it('cuts off an answer over the configured maximum size and reports that community', async () => {
    const g = await startIG(
      igDirectoryFor(refs.A, [
        {
          ...remoteCommunity('B', home('B'), rgB.url),
          endpoints: { rad75: { url: `${rgB.url}/rad75`, maxResponseBytes: 500_000 } },
        },
      ]),
    );
    try {
      const study = studiesOf('B', PATIENT_1)[0];
      const a = await retrieveCall(
        `${g.url}/rad69`,
        Action.RAD69,
        encodeRetrieveImagingDocumentSetRequest(studyRequest('B', study)),
      );
      expectValid(a);
      expect(a.registryStatus).toMatch(/PartialSuccess|Failure/);
      expect(a.errors.length).toBeGreaterThan(0);
      // per instance at its SOP Instance UID (RAD TF-3 4.69.5); about the answer as a whole, at the community
      const sops = study.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid));
      for (const e of a.errors) {
        expect(e.location).toBe(e.severity === 'Error' ? sops.find((u) => u === e.location) : home('B'));
        expect(e.codeContext).toContain(home('B'));
      }
      expect(a.errors[0].codeContext).toMatch(/larger than the configured maximum/);
      const total = a.documents.reduce((n, d) => n + d.bytes.length, 0);
      expect(total).toBeLessThanOrEqual(500_000);
    } finally {
      await g.close();
    }
  });

  it('audits the served RAD-69 and each RAD-75 by study, success and failure apart', async () => {
    audit.events.length = 0;
    const req = studyRequest('B', studiesOf('B', PATIENT_1)[0]);
    req.studies[0].series[0].documents.push({
      homeCommunityId: home('B'),
      repositoryUniqueId: m.B.idsRepositoryUniqueId,
      documentUniqueId: '1.2.392.999.2',
    });
    await retrieveCall(`${ig.url}/rad69`, Action.RAD69, encodeRetrieveImagingDocumentSetRequest(req));
    await new Promise((r) => setTimeout(r, 50));
    const served = audit.events.find((e) => e.kind === 'transaction' && e.transaction === 'RAD-69');
    const sent = audit.events.find((e) => e.kind === 'transaction' && e.transaction === 'RAD-75');
    for (const e of [served, sent]) {
      if (e?.kind !== 'transaction') throw new Error('missing audit event');
      expect(e.outcome).toBe(4);
      expect(e.groups.map((g) => g.outcome)).toEqual([0, 8]);
      expect(e.groups[1].studies?.[0].series[0].sopInstanceUids).toEqual(['1.2.392.999.2']);
    }
  });
});
