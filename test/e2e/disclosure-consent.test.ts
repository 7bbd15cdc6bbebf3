/**
 * Patient consent at the Responding Gateway (issue 18, R10, R42), gateways as processes over mutual
 * TLS in front of reference community B, whose registry holds BPPC documents (seed/consent.ts):
 * patient 2 opted out, patient 3 consented, patient 1 has nothing on file.
 *
 *  - a refused patient is answered exactly like an unknown one (ITI-38), its documents and images
 *    like unknown documents (ITI-39, RAD-75), before anything is fetched — and the gateway's own
 *    audit record says why;
 *  - the policy is per calling community (which policy OIDs permit, the default without consent);
 *  - consent read from a consent service and from a file (reread when it changes); a consent
 *    source that cannot answer releases nothing, for every patient alike;
 *  - with every community's own patient ids (XCPD), consent covers patient discovery too: an
 *    opted-out patient is no match to ITI-55, so the initiating gateway never asks for them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Action,
  decodeAdhocQueryResponse,
  decodePatientQueryAnswer,
  encodeFindDocumentsRequest,
  encodePatientQuery,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  documentEntryFacts,
  sourceOf,
  type PatientQuery,
} from '@xcai/shared';
import type { Agent } from 'undici';
import { readManifest } from '../../services/reference-community/src/server';
import { DEMO_PRIVACY_POLICIES } from '../../services/reference-community/src/seed/consent';
import {
  XCPD_DEMO_AUTHORITIES,
  xcpdDemoPatientIds,
} from '../../services/reference-community/src/seed/generate';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';
import { makePki, type TestPki } from '../support/certs';
import { retrieveCall, soapCall } from '../support/client';
import {
  demoSeeds,
  localOf,
  spawnCommunity,
  studyImagingRequest,
  xcpdSeeds,
  type CommunityProcess,
} from '../support/federation';
import {
  errorsWithoutIds,
  gatewayEnv,
  igDirectoryJson,
  kosRequests,
  rgDirectoryJson,
  spoolRecords,
} from '../support/gateways';
import { findDocuments, personName } from '../support/xcpd';
import { spawnGateway, type GatewayProcess } from '../support/processes';

const cx = (id: string) => `${id}^^^&1.3.6.1.4.1.21367.13.20.1000&ISO`;
const YAMADA = cx('JP1001'); // nothing on file
const SATO = cx('JP1002'); // opted out
const TANAKA = cx('JP1003'); // consented
const NOBODY = cx('JP9999');
const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
const HOME_C = 'urn:oid:1.3.6.1.4.1.21367.13.70.103';
const { share: SHARE, optOut: OPT_OUT } = DEMO_PRIVACY_POLICIES;

let pki: TestPki;
let refB: CommunityProcess;
let m: SeedManifest;
let rg: GatewayProcess;
let spool: string;
let asA: Agent;
let asC: Agent;
const extra: GatewayProcess[] = [];

beforeAll(async () => {
  const seeds = await demoSeeds();
  m = readManifest(seeds.B);
  refB = await spawnCommunity([seeds.B]);
  pki = makePki(['gw-a', 'gw-b', 'gw-c'], 'consent');
  asA = pki.client('gw-a');
  asC = pki.client('gw-c');
  const dir = rgDirectoryJson(
    refB,
    [
      { homeCommunityId: HOME_A, name: 'A', certName: 'gw-a', ca: pki.ca },
      // Community C may see only patients who consented (its own agreement).
      { homeCommunityId: HOME_C, name: 'C', certName: 'gw-c', ca: pki.ca, consent: { default: 'deny' } },
    ],
    {
      policy: { unknownPatient: 'XDSUnknownPatientId' },
      // An opt-out region: sharing unless the patient objects.
      consent: { source: 'bppc', default: 'permit', permit: [SHARE], deny: [OPT_OUT] },
    },
  );
  const e = gatewayEnv(pki, 'gw-b', 'required');
  spool = e.spool;
  rg = await spawnGateway('responding', dir, e.env);
}, 120_000);

afterAll(async () => {
  await Promise.all([rg?.stop(), ...extra.map((g) => g.stop())]);
  await refB?.stop();
  await asA?.close();
  await asC?.close();
  pki?.remove();
});

const iti38 = (url: string, patient: string, client: Agent) =>
  soapCall(`${url}/iti38`, Action.ITI38, encodeFindDocumentsRequest(patient), { dispatcher: client });

function answer(a: Awaited<ReturnType<typeof iti38>>) {
  expect(a.status).toBe(200);
  return decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
}

/** The answer's body as the requester sees it (the SOAP payload element). */
const payloadOf = (a: Awaited<ReturnType<typeof iti38>>) => sourceOf(a.envelope.doc, a.envelope.payload);

const studyOf = (patient: string) => m.patients.find((p) => p.id === patient)!.studies[0];
const rad75 = (patient: string, client: Agent) =>
  retrieveCall(
    `${rg.url}/rad75`,
    Action.RAD75,
    encodeRetrieveImagingDocumentSetRequest(studyImagingRequest(m, studyOf(patient))),
    { dispatcher: client },
  );
const instancesOf = (patient: string) => studyOf(patient).series.flatMap((s) => s.instances);

describe('consent at the responding gateway (BPPC in the local registry)', () => {
  it('serves RAD-75 only for studies released to the community (by ITI-38 or ITI-39)', async () => {
    // Before any query: the study was never disclosed to A, so it is unknown to A.
    const before = await rad75(TANAKA, asA);
    expect(before.documents).toHaveLength(0);
    expect(new Set(before.errors.map((e) => e.errorCode))).toEqual(new Set(['XDSDocumentUniqueIdError']));
    expect(before.errors).toHaveLength(instancesOf(TANAKA).length);
    // ITI-38 releases the patient's KOS manifests and with them their studies.
    expect(answer(await iti38(rg.url, TANAKA, asA)).objects.length).toBeGreaterThan(0);
    const after = await rad75(TANAKA, asA);
    expect(after.errors).toEqual([]);
    expect(after.documents).toHaveLength(instancesOf(TANAKA).length);
    // ITI-39 of a manifest releases its study too.
    const kos = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest(kosRequests(m, YAMADA)),
      {
        dispatcher: asA,
      },
    );
    expect(kos.documents).toHaveLength(kosRequests(m, YAMADA).length);
    expect((await rad75(YAMADA, asA)).documents).toHaveLength(instancesOf(YAMADA).length);
  });

  it('answers an opted-out patient exactly like an unknown patient (R42) and audits why', async () => {
    const refused = await iti38(rg.url, SATO, asA);
    const unknown = await iti38(rg.url, NOBODY, asA);
    expect(answer(refused).status).toBe('Failure');
    expect(answer(refused).errors.map((e) => e.errorCode)).toEqual(['XDSUnknownPatientId']);
    expect(payloadOf(refused)).toBe(payloadOf(unknown));
    // Nothing on file: the region's default (permit) decides; consented: shared, consent document included.
    const yamada = answer(await iti38(rg.url, YAMADA, asA));
    expect(yamada.status).toBe('Success');
    expect(yamada.objects.length).toBe(kosRequests(m, YAMADA).length);
    const tanaka = answer(await iti38(rg.url, TANAKA, asA));
    const mimeTypes = tanaka.objects.map((o) => documentEntryFacts(o)?.mimeType);
    expect(mimeTypes).toContain('text/xml');

    const views = await spoolRecords(spool, (vs) =>
      vs.some((v) => v.transaction === 'ITI-38' && v.patients.includes(SATO)),
    );
    const served = views.find((v) => v.transaction === 'ITI-38' && v.patients.includes(SATO))!;
    expect(served.outcome).toBeGreaterThan(0);
    expect(served.outcomeDescription).toContain('consent-denied');
    expect(served.outcomeDescription).toContain(OPT_OUT);
    const other = views.find((v) => v.transaction === 'ITI-38' && v.patients.includes(NOBODY))!;
    expect(other.outcomeDescription ?? '').not.toContain('consent-denied');
  });

  it("withholds an opted-out patient's documents and images as unknown ones, without fetching them", async () => {
    const kos = kosRequests(m, SATO);
    const fake = kos.map((d) => ({ ...d, documentUniqueId: `${d.documentUniqueId}.999` }));
    const refused = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest(kos),
      {
        dispatcher: asA,
      },
    );
    const unknown = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest(fake),
      {
        dispatcher: asA,
      },
    );
    expect(refused.documents).toHaveLength(0);
    expect(refused.registryStatus).toBe(unknown.registryStatus);
    // The same errors, but for the ids asked: located at B's home, the document in codeContext.
    expect(refused.errors.map((e) => [e.errorCode, e.location])).toEqual(
      kos.map(() => ['XDSDocumentUniqueIdError', m.homeCommunityId]),
    );
    refused.errors.forEach((e, i) => expect(e.codeContext).toContain(kos[i].documentUniqueId));
    expect(errorsWithoutIds(refused.errors, kos)).toEqual(errorsWithoutIds(unknown.errors, fake));
    const images = await rad75(SATO, asA);
    expect(images.documents).toHaveLength(0);
    expect(images.errors.map((e) => e.errorCode)).toEqual(
      instancesOf(SATO).map(() => 'XDSDocumentUniqueIdError'),
    );

    // Nothing was asked of the repository or the Imaging Document Source for them.
    const views = await spoolRecords(spool, (vs) => vs.some((v) => v.transaction === 'RAD-75'));
    const asked = views.filter((v) => v.transaction === 'ITI-43' || v.transaction === 'RAD-69');
    const satoIds = new Set([...kos.map((d) => d.documentUniqueId), studyOf(SATO).studyInstanceUid]);
    for (const v of asked)
      for (const id of [...v.documents, ...v.studies]) expect(satoIds.has(id)).toBe(false);
  });

  it('applies each community its own policy (an opt-in agreement for community C)', async () => {
    expect(answer(await iti38(rg.url, YAMADA, asC)).errors.map((e) => e.errorCode)).toEqual([
      'XDSUnknownPatientId',
    ]);
    expect(answer(await iti38(rg.url, TANAKA, asC)).objects.length).toBeGreaterThan(0);
    expect(answer(await iti38(rg.url, YAMADA, asA)).objects.length).toBeGreaterThan(0);
  });
});

describe('other consent sources', () => {
  let service: Server;
  let serviceUrl: string;
  const asked: unknown[] = [];
  const onFile = new Map<string, string[]>([
    [SATO, [OPT_OUT]],
    [TANAKA, [SHARE]],
  ]);

  beforeAll(async () => {
    service = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { patientId: string };
        asked.push(body);
        const policies = onFile.get(body.patientId);
        if (!policies) res.writeHead(404).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ policies }));
      });
    });
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', () => r()));
    serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}/consent`;
  });

  afterAll(() => new Promise<void>((r) => (service.listening ? service.close(() => r()) : r())));

  const start = async (consent: Record<string, unknown>) => {
    const e = gatewayEnv(pki, 'gw-b', 'required');
    const g = await spawnGateway(
      'responding',
      rgDirectoryJson(
        refB,
        { homeCommunityId: HOME_A, name: 'A', certName: 'gw-a', ca: pki.ca },
        { consent },
      ),
      e.env,
    );
    extra.push(g);
    return { g, spool: e.spool };
  };

  it('asks a consent service (opt-in region), and releases nothing for anyone when it is down', async () => {
    const { g, spool: s } = await start({
      source: 'service',
      service: { url: serviceUrl, timeoutMs: 2000 },
      default: 'deny',
      permit: [SHARE],
      deny: [OPT_OUT],
      cacheMs: 0,
    });
    expect(answer(await iti38(g.url, TANAKA, asA)).objects.length).toBeGreaterThan(0);
    const refused = await iti38(g.url, YAMADA, asA); // nothing on file: denied in an opt-in region
    expect(payloadOf(refused)).toBe(payloadOf(await iti38(g.url, NOBODY, asA)));
    expect(answer(refused).objects).toHaveLength(0);
    expect(asked).toContainEqual({ patientId: YAMADA });

    await new Promise<void>((r) => service.close(() => r()));
    const down = [await iti38(g.url, TANAKA, asA), await iti38(g.url, NOBODY, asA)].map(answer);
    for (const d of down) {
      expect(d.status).toBe('Failure');
      expect(d.objects).toHaveLength(0);
      expect(d.errors.map((e) => [e.errorCode, e.codeContext])).toEqual([
        ['XDSRegistryError', 'consent could not be checked; try again later'],
      ]);
    }
    const views = await spoolRecords(s, (vs) =>
      vs.some((v) => (v.outcomeDescription ?? '').includes('consent-unavailable')),
    );
    expect(views.some((v) => v.patients.includes(TANAKA) && v.outcome !== 0)).toBe(true);
  });

  it('reads a consent file and rereads it when it changes', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'xcai-consent-')), 'consent.yaml');
    writeFileSync(file, `patients:\n  '${TANAKA}': ['${SHARE}']\n`);
    const { g } = await start({ source: 'file', file, default: 'deny', permit: [SHARE], cacheMs: 0 });
    expect(answer(await iti38(g.url, TANAKA, asA)).objects.length).toBeGreaterThan(0);
    expect(answer(await iti38(g.url, YAMADA, asA)).objects).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 1100)); // the file is looked at once a second at most
    writeFileSync(file, `patients:\n  '${TANAKA}': ['${SHARE}']\n  '${YAMADA}': ['${SHARE}']\n`);
    expect(answer(await iti38(g.url, YAMADA, asA)).objects.length).toBeGreaterThan(0);
  });
});

describe('consent in patient discovery (XCPD: every community its own patient ids)', () => {
  // As `npm start` runs them: A's JP1002 (Sato, opted out in B) is B's B-4712; Tanaka consented.
  const ids = [...xcpdDemoPatientIds().values()] as Record<'A' | 'B', string>[];
  const [sato, tanaka] = [ids[1], ids[2]];
  let xpki: TestPki;
  let refs: Record<'A' | 'B', CommunityProcess>;
  let rgB: GatewayProcess;
  let igA: GatewayProcess;
  let rgSpool: string;
  let consumer: Agent;
  let asGwA: Agent;

  beforeAll(async () => {
    const seeds = await xcpdSeeds();
    const [a, b] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
    refs = { A: a, B: b };
    xpki = makePki(['gw-a', 'gw-b', 'consumer'], 'consent-xcpd');
    const rgEnv = gatewayEnv(xpki, 'gw-b', 'required');
    rgSpool = rgEnv.spool;
    rgB = await spawnGateway(
      'responding',
      rgDirectoryJson(
        refs.B,
        { homeCommunityId: HOME_A, name: 'A', certName: 'gw-a', ca: xpki.ca },
        {
          local: { ...localOf(refs.B), patientDemographicsSupplier: { url: refs.B.pdq } },
          patientIdentity: { assigningAuthority: XCPD_DEMO_AUTHORITIES.B },
          policy: { unknownPatient: 'XDSUnknownPatientId' },
          consent: { source: 'bppc', default: 'permit', permit: [SHARE], deny: [OPT_OUT] },
        },
      ),
      rgEnv.env,
    );
    const ig = igDirectoryJson(
      { homeCommunityId: refs.B.homeCommunityId, url: rgB.url, certName: 'gw-b', ca: xpki.ca },
      {
        local: { ...localOf(refs.A), patientDemographicsSupplier: { url: refs.A.pdq } },
        patientIdentity: { assigningAuthority: XCPD_DEMO_AUTHORITIES.A },
        consumers: [{ name: 'PACS', identity: { trustAnchors: [xpki.ca], names: ['consumer'] } }],
      },
    );
    const toB = (ig.communities as Record<string, Record<string, unknown>>[])[0];
    toB.endpoints.iti55 = `${rgB.url}/iti55`;
    toB.patientIdentity = { mode: 'xcpd', assigningAuthority: XCPD_DEMO_AUTHORITIES.B };
    igA = await spawnGateway('initiating', ig, gatewayEnv(xpki, 'gw-a', 'required').env);
    consumer = xpki.client('consumer');
    asGwA = xpki.client('gw-a');
  }, 120_000);

  afterAll(async () => {
    await Promise.all([igA?.stop(), rgB?.stop()]);
    await Promise.all([refs?.A.stop(), refs?.B.stop()]);
    await consumer?.close();
    await asGwA?.close();
    xpki?.remove();
  });

  /** An ITI-55 as A's initiating gateway sends it: A's id, the demographics from A's MPI. */
  const discovery = (id: string, birthTime: string): PatientQuery => ({
    messageId: { root: '5d1f2c3b-4a59-4687-9766-554433221100' },
    sender: { id: { root: HOME_A.slice(8) }, organization: HOME_A.slice(8) },
    receivers: [{ id: { root: refs.B.homeCommunityId.slice(8) } }],
    senderAssigningAuthority: XCPD_DEMO_AUTHORITIES.A,
    queryId: { root: HOME_A.slice(8), extension: 'consent' },
    responsePriority: 'I',
    ids: [{ root: XCPD_DEMO_AUTHORITIES.A, extension: id }],
    demographics: {
      names: [personName('佐藤', '花子', 'IDE'), personName('さとう', 'はなこ', 'SYL')],
      gender: 'F',
      birthTime,
      addresses: [],
    },
    scopingOrganizations: [],
  });
  const iti55 = async (q: PatientQuery) => {
    const a = await soapCall(`${rgB.url}/iti55`, Action.ITI55, encodePatientQuery(q), { dispatcher: asGwA });
    expect(a.status).toBe(200);
    const { messageId: _id, ...ans } = decodePatientQueryAnswer(a.envelope.doc, a.envelope.payload);
    return ans;
  };

  it("answers patient discovery (ITI-55) for an opted-out patient as no match: A's gateway never asks B about them", async () => {
    // Directly: Sato is answered exactly like a person B's MPI does not know (another birth date).
    const refused = await iti55(discovery('JP1002', '19780824'));
    const nobody = await iti55(discovery('JP1099', '19780825'));
    expect(refused).toEqual(nobody);
    expect(refused).toMatchObject({
      acknowledgement: 'AA',
      queryResponseCode: 'NF',
      matches: [],
      issues: [],
    });
    // B's own record names the patient it withheld, and why.
    const views = await spoolRecords(rgSpool, (vs) =>
      vs.some((v) => v.transaction === 'ITI-55' && v.patients.includes(sato.B)),
    );
    const served = views.find((v) => v.transaction === 'ITI-55' && v.patients.includes(sato.B))!;
    expect(served.outcome).toBe(4);
    expect(served.outcomeDescription).toContain('consent-denied');
    expect(served.outcomeDescription).toContain(OPT_OUT);

    // Through A's initiating gateway: the consented patient's documents arrive from B (the XCPD
    // path works); for the opted-out one B gives nothing, no error, and is never asked ITI-38.
    const shared = await findDocuments(`${igA.url}/iti18`, tanaka.A, { dispatcher: consumer });
    expect(shared.errors).toEqual([]);
    expect(shared.patients.filter((p) => p === tanaka.B).length).toBeGreaterThan(0);
    const hidden = await findDocuments(`${igA.url}/iti18`, sato.A, { dispatcher: consumer });
    expect(hidden.status).toBe('Success');
    expect(hidden.errors).toEqual([]);
    expect(hidden.homes.filter((h) => h === refs.B.homeCommunityId)).toEqual([]);
    const atB = await spoolRecords(rgSpool, (vs) => vs.filter((v) => v.transaction === 'ITI-55').length >= 4);
    expect(atB.filter((v) => v.transaction === 'ITI-38').map((v) => v.patients)).toEqual([[tanaka.B]]);

    // And B's own id for the patient, asked directly, is an unknown patient (ITI-38).
    const direct = await iti38(rgB.url, sato.B, asGwA);
    expect(payloadOf(direct)).toBe(
      payloadOf(await iti38(rgB.url, `B-9999^^^&${XCPD_DEMO_AUTHORITIES.B}&ISO`, asGwA)),
    );
  });
});
