/**
 * ITI-18 → ITI-38 end to end over HTTP on loopback: consumer → initiating gateway → {our reference
 * registry, responding gateways B and C → their reference registries}. Reference communities run
 * in their own processes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Action,
  decodeAdhocQueryResponse,
  encodeAdhocQueryRequest,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  NS,
  StoredQuery,
  type AdhocQueryResponse,
  type RunningGateway,
  APPROVED_STATUS,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { soapCall, type SoapAnswer } from '../support/client';
import {
  demoSeeds,
  directory,
  MemoryAuditSink,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { xsdErrors } from '../support/xsd';
import { readManifest } from '../../services/reference-community/src/server';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const PATIENT_3 = 'JP1003^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';

let seeds: Record<'A' | 'B' | 'C', string>;
let manifests: Record<'A' | 'B' | 'C', SeedManifest>;
let refA: CommunityProcess, refB: CommunityProcess, refC: CommunityProcess, refSlow: CommunityProcess;
let rgB: RunningGateway, rgC: RunningGateway, rgSlow: RunningGateway;
let ig: RunningGateway;
const audit = new MemoryAuditSink();
const stop: (() => Promise<void>)[] = [];

const HOME = (k: 'A' | 'B' | 'C') => manifests[k].homeCommunityId;

function rgDirectory(k: 'B' | 'C', registry: string, extra: Record<string, unknown> = {}) {
  return directory({
    homeCommunityId: HOME(k),
    name: k,
    local: { registry: { url: registry } },
    communities: [{ homeCommunityId: HOME('A'), name: 'A' }],
    ...extra,
  });
}

function igDirectory(communities: Record<string, unknown>[], withRegistry = true) {
  return directory({
    homeCommunityId: HOME('A'),
    name: 'A',
    deadlineMs: 5000,
    local: withRegistry ? { registry: { url: refA.registry } } : {},
    communities,
  });
}

const community = (k: string, home: string, iti38: string, timeoutMs = 5000) => ({
  homeCommunityId: home,
  name: k,
  endpoints: { iti38: { url: iti38, timeoutMs } },
});

function findDocuments(patient: string, returnType: 'LeafClass' | 'ObjectRef' = 'LeafClass') {
  return encodeFindDocumentsRequest(patient, { returnType });
}

function answer(a: SoapAnswer): AdhocQueryResponse {
  expect(a.status).toBe(200);
  expect(a.envelope.wsa.action).toBe(Action.ITI18Response);
  expect(a.envelope.wsa.relatesTo).toBe(a.messageId);
  return decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
}

/** What the registry holds for the patient: KOS manifests and, where seeded, consent documents. */
function approvedDocs(k: 'A' | 'B' | 'C', patient: string) {
  return [...manifests[k].documentEntries, ...(manifests[k].consents?.documentEntries ?? [])].filter(
    (d) => d.patientId === patient && d.availabilityStatus === APPROVED_STATUS,
  );
}

beforeAll(async () => {
  seeds = await demoSeeds();
  manifests = { A: readManifest(seeds.A), B: readManifest(seeds.B), C: readManifest(seeds.C) };
  [refA, refB, refC, refSlow] = await Promise.all([
    spawnCommunity([seeds.A]),
    spawnCommunity([seeds.B]),
    spawnCommunity([seeds.C]),
    spawnCommunity([seeds.C], { delayMs: 1500 }),
  ]);
  stop.push(refA.stop, refB.stop, refC.stop, refSlow.stop);
  [rgB, rgC, rgSlow] = await Promise.all([
    startRG(rgDirectory('B', refB.registry)),
    startRG(rgDirectory('C', refC.registry)),
    startRG(rgDirectory('C', refSlow.registry)),
  ]);
  stop.push(rgB.close, rgC.close, rgSlow.close);
  ig = await startIG(
    igDirectory([
      community('B', HOME('B'), `${rgB.url}/iti38`),
      community('C', HOME('C'), `${rgC.url}/iti38`),
    ]),
    { audit },
  );
  stop.push(ig.close);
}, 60_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s();
});

describe('ITI-18 at the initiating gateway, fanned out as ITI-38', () => {
  it('merges our registry and every community, each object stamped with its home', async () => {
    const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments(PATIENT_1));
    expect(xsdErrors([a.xml])).toBe('');
    const res = answer(a);
    expect(res.status).toBe('Success');
    expect(res.errors).toEqual([]);
    const byHome = new Map<string, string[]>();
    for (const o of res.objects) {
      expect(o.is(NS.rim, 'ExtrinsicObject')).toBe(true);
      const home = o.attr('home') as string;
      byHome.set(home, [...(byHome.get(home) ?? []), o.attr('id') as string]);
    }
    for (const k of ['A', 'B', 'C'] as const) {
      expect((byHome.get(HOME(k)) ?? []).sort()).toEqual(
        approvedDocs(k, PATIENT_1)
          .map((d) => d.entryUUID)
          .sort(),
      );
    }
  });

  it('relays metadata unchanged (Japanese names, hash and size)', async () => {
    const res = answer(await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments(PATIENT_1)));
    const entry = approvedDocs('B', PATIENT_1)[0];
    const obj = res.objects.find((o) => o.attr('id') === entry.entryUUID);
    const slot = (n: string) =>
      obj
        ?.childrenNamed(NS.rim, 'Slot')
        .find((s) => s.attr('name') === n)
        ?.child(NS.rim, 'ValueList')
        ?.childrenNamed(NS.rim, 'Value')
        .map((v) => v.text);
    expect(slot('hash')).toEqual([entry.hash]);
    expect(slot('size')).toEqual([String(entry.size)]);
    expect(slot('sourcePatientInfo')).toEqual(entry.sourcePatientInfo);
    expect(entry.sourcePatientInfo.join('')).toMatch(/山田/);
  });

  it('returns ObjectRefs with home when asked', async () => {
    const res = answer(
      await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments(PATIENT_1, 'ObjectRef')),
    );
    expect(res.status).toBe('Success');
    expect(res.objects.length).toBe(
      ['A', 'B', 'C'].reduce((n, k) => n + approvedDocs(k as 'A', PATIENT_1).length, 0),
    );
    expect(
      res.objects.every((o) => o.is(NS.rim, 'ObjectRef') && o.attr('home')?.startsWith('urn:oid:')),
    ).toBe(true);
  });

  it('sends a GetDocuments with home only to that community', async () => {
    const entry = approvedDocs('B', PATIENT_1)[0];
    const body = encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      home: HOME('B'),
      params: { $XDSDocumentEntryUniqueId: `('${entry.uniqueId}')` },
    });
    const res = answer(await soapCall(`${ig.url}/iti18`, Action.ITI18, body));
    expect(res.status).toBe('Success');
    expect(res.objects.map((o) => [o.attr('id'), o.attr('home')])).toEqual([[entry.entryUUID, HOME('B')]]);
  });

  it('answers XDSUnknownCommunity for an unknown home, without contacting anyone', async () => {
    const body = encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      home: 'urn:oid:1.2.3.4.5.6.7',
      params: { $XDSDocumentEntryUniqueId: "('1.2.3')" },
    });
    const res = answer(await soapCall(`${ig.url}/iti18`, Action.ITI18, body));
    expect(res.status).toBe('Failure');
    expect(res.errors.map((e) => [e.errorCode, e.location])).toEqual([
      ['XDSUnknownCommunity', 'urn:oid:1.2.3.4.5.6.7'],
    ]);
  });

  it('answers Failure with XDSMissingHomeCommunityId for an id query without home, local registry or not (ITI TF-2 3.18.4.1.3)', async () => {
    const igNoRegistry = await startIG(igDirectory([community('B', HOME('B'), `${rgB.url}/iti38`)], false));
    try {
      const entry = approvedDocs('A', PATIENT_1)[0];
      const body = encodeAdhocQueryRequest({
        queryId: StoredQuery.GetDocuments,
        params: { $XDSDocumentEntryUniqueId: `('${entry.uniqueId}')` },
      });
      for (const g of [ig, igNoRegistry]) {
        const res = answer(await soapCall(`${g.url}/iti18`, Action.ITI18, body));
        expect([res.status, res.errors.map((e) => [e.errorCode, e.location]), res.objects]).toEqual([
          'Failure',
          [['XDSMissingHomeCommunityId', HOME('A')]],
          [],
        ]);
      }
    } finally {
      await igNoRegistry.close();
    }
  });

  it('gives PartialSuccess naming a community that is down', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}/iti38`;
    await new Promise<void>((r) => dead.close(() => r()));
    const home = 'urn:oid:1.3.6.1.4.1.21367.13.70.199';
    const g = await startIG(
      igDirectory([community('B', HOME('B'), `${rgB.url}/iti38`), community('D', home, deadUrl)]),
    );
    try {
      const res = answer(await soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments(PATIENT_1)));
      expect(res.status).toBe('PartialSuccess');
      expect(res.errors.map((e) => [e.errorCode, e.location])).toEqual([['XDSUnavailableCommunity', home]]);
      expect(new Set(res.objects.map((o) => o.attr('home')))).toEqual(new Set([HOME('A'), HOME('B')]));
    } finally {
      await g.close();
    }
  });

  it('gives PartialSuccess naming a community slower than its timeout, and does not wait for it', async () => {
    const g = await startIG(
      igDirectory([
        community('B', HOME('B'), `${rgB.url}/iti38`),
        community('C', HOME('C'), `${rgSlow.url}/iti38`, 400),
      ]),
    );
    try {
      const t0 = Date.now();
      const res = answer(await soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments(PATIENT_1)));
      const ms = Date.now() - t0;
      expect(res.status).toBe('PartialSuccess');
      expect(res.errors.map((e) => [e.errorCode, e.location])).toEqual([
        ['XDSUnavailableCommunity', HOME('C')],
      ]);
      expect(ms).toBeLessThan(1500); // the slow community answers after 1.5 s: we did not wait for it
    } finally {
      await g.close();
    }
  });

  it('gives Failure when every community fails', async () => {
    const g = await startIG(
      igDirectory(
        [
          community('X', 'urn:oid:1.3.6.1.4.1.21367.13.70.198', 'http://127.0.0.1:9/iti38'),
          community('C', HOME('C'), `${rgSlow.url}/iti38`, 300),
        ],
        false,
      ),
    );
    try {
      const res = answer(await soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments(PATIENT_1)));
      expect(res.status).toBe('Failure');
      expect(res.errors.map((e) => e.errorCode).sort()).toEqual([
        'XDSUnavailableCommunity',
        'XDSUnavailableCommunity',
      ]);
      expect(res.objects).toEqual([]);
    } finally {
      await g.close();
    }
  });

  it('writes an audit record for the query served and for each sub-request', async () => {
    audit.events.length = 0;
    await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments(PATIENT_3));
    const kinds = audit.events
      .map((e) => (e.kind === 'transaction' ? `${e.transaction}/${e.side}` : e.kind))
      .sort();
    expect(kinds).toEqual(['ITI-18/requester', 'ITI-18/responder', 'ITI-38/requester', 'ITI-38/requester']);
    for (const e of audit.events) if (e.kind === 'transaction') expect(e.patientIds).toEqual([PATIENT_3]);
  });
});

describe('what the initiating gateway sends validates against the IHE schemas', () => {
  let capture: Server;
  const received: string[] = [];
  let url = '';
  beforeAll(async () => {
    capture = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const xml = Buffer.concat(chunks).toString();
        received.push(xml);
        const id = /<wsa:MessageID>([^<]+)</.exec(xml)?.[1];
        res.writeHead(200, { 'content-type': 'application/soap+xml' });
        res.end(
          encodeEnvelope({
            action: Action.ITI38Response,
            relatesTo: id,
            body: encodeAdhocQueryResponse('Success', [], []),
            request: false,
          }),
        );
      });
    });
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(capture.address() as AddressInfo).port}/iti38`;
  });
  afterAll(() => new Promise<void>((r) => capture.close(() => r())));

  it('ITI-38 requests', async () => {
    const g = await startIG(igDirectory([community('B', HOME('B'), url)], false));
    try {
      await soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments(PATIENT_1));
      const body = encodeAdhocQueryRequest({
        queryId: StoredQuery.GetDocuments,
        home: HOME('B'),
        params: { $XDSDocumentEntryUniqueId: "('1.2')" },
      });
      await soapCall(`${g.url}/iti18`, Action.ITI18, body);
      expect(received).toHaveLength(2);
      expect(xsdErrors(received)).toBe('');
      expect(received[1]).toContain(`home="${HOME('B')}"`);
      expect(received.every((x) => x.includes(Action.ITI38))).toBe(true);
    } finally {
      await g.close();
    }
  });
});

describe('ITI-38 at the responding gateway', () => {
  it('stamps our home on every object and validates', async () => {
    const a = await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments(PATIENT_3));
    expect(xsdErrors([a.xml])).toBe('');
    expect(a.envelope.wsa.action).toBe(Action.ITI38Response);
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.status).toBe('Success');
    expect(res.objects.length).toBe(approvedDocs('B', PATIENT_3).length);
    expect(res.objects.every((o) => o.attr('home') === HOME('B'))).toBe(true);
  });

  it.each([
    ['empty-success', 'Success', []],
    ['XDSUnknownPatientId', 'Failure', ['XDSUnknownPatientId']],
  ])(
    'answers an unknown or malformed patient by policy %s, the same for both (M6)',
    async (policy, status, codes) => {
      const g = await startRG(rgDirectory('B', refB.registry, { policy: { unknownPatient: policy } }));
      try {
        for (const pid of [
          'NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO',
          "bad'id^^^",
          '../../etc/passwd',
          'x'.repeat(300),
        ]) {
          const a = await soapCall(`${g.url}/iti38`, Action.ITI38, findDocuments(pid));
          const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
          expect([pid.slice(0, 20), res.status, res.errors.map((e) => e.errorCode)]).toEqual([
            pid.slice(0, 20),
            status,
            codes,
          ]);
          expect(res.objects).toEqual([]);
        }
      } finally {
        await g.close();
      }
    },
  );

  it('requires home on queries without a patient id, and it must be ours', async () => {
    const noHome = encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      params: { $XDSDocumentEntryUniqueId: "('1.2')" },
    });
    const a = await soapCall(`${rgB.url}/iti38`, Action.ITI38, noHome);
    const r1 = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect([r1.status, r1.errors[0].errorCode]).toEqual(['Failure', 'XDSMissingHomeCommunityId']);
    const other = encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      home: HOME('C'),
      params: { $XDSDocumentEntryUniqueId: "('1.2')" },
    });
    const b = await soapCall(`${rgB.url}/iti38`, Action.ITI38, other);
    const r2 = decodeAdhocQueryResponse(b.envelope.doc, b.envelope.payload);
    // every RegistryError of a Responding Gateway carries its own home (ITI TF-2 3.38.4.1.3)
    expect([r2.status, r2.errors[0].errorCode, r2.errors[0].location]).toEqual([
      'Failure',
      'XDSUnknownCommunity',
      HOME('B'),
    ]);
    expect(r2.errors[0].codeContext).toContain(HOME('C'));
  });

  it('answers GetDocuments with our home and GetAssociations', async () => {
    const entry = approvedDocs('B', PATIENT_3)[0];
    const get = encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      home: HOME('B'),
      params: { $XDSDocumentEntryEntryUUID: `('${entry.entryUUID}')` },
    });
    const a = await soapCall(`${rgB.url}/iti38`, Action.ITI38, get);
    const r = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(r.objects.map((o) => o.attr('id'))).toEqual([entry.entryUUID]);
    const assoc = encodeAdhocQueryRequest({
      queryId: StoredQuery.GetAssociations,
      home: HOME('B'),
      params: { $uuid: `('${entry.entryUUID}')` },
    });
    const b = await soapCall(`${rgB.url}/iti38`, Action.ITI38, assoc);
    expect(xsdErrors([b.xml])).toBe('');
    const r2 = decodeAdhocQueryResponse(b.envelope.doc, b.envelope.payload);
    expect(r2.objects.length).toBeGreaterThan(0);
    expect(r2.objects.every((o) => o.is(NS.rim, 'Association') && o.attr('home') === HOME('B'))).toBe(true);
  });
});
