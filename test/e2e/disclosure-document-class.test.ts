/**
 * Per-community document-class policy (issue 18, R9), gateways as processes: the directory lets
 * community A see only imaging manifests (classCode IMAGES) and community C only restricted
 * documents (confidentialityCode R, of which B has none). What a community may not see is left out
 * of every query answer as if absent (with what linked it), its retrieve answered
 * XDSDocumentUniqueIdError as for an unknown document, and the gateway's audit record says why.
 */
import {
  Action,
  decodeAdhocQueryResponse,
  encodeAdhocQueryRequest,
  encodeFindDocumentsRequest,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  StoredQuery,
  NS,
} from '@xcai/shared';
import type { Agent } from 'undici';
import { readManifest } from '../../services/reference-community/src/server';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';
import { makePki, type TestPki } from '../support/certs';
import { retrieveCall, soapCall } from '../support/client';
import { demoSeeds, spawnCommunity, studyImagingRequest, type CommunityProcess } from '../support/federation';
import { errorsWithoutIds, gatewayEnv, rgDirectoryJson, spoolRecords } from '../support/gateways';
import { spawnGateway, type GatewayProcess } from '../support/processes';

const TANAKA = 'JP1003^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'; // KOS manifests and a consent document in B
const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
const HOME_C = 'urn:oid:1.3.6.1.4.1.21367.13.70.103';

let pki: TestPki;
let refB: CommunityProcess;
let m: SeedManifest;
let rg: GatewayProcess;
let spool: string;
let asA: Agent;
let asC: Agent;

beforeAll(async () => {
  const seeds = await demoSeeds();
  m = readManifest(seeds.B);
  refB = await spawnCommunity([seeds.B]);
  pki = makePki(['gw-a', 'gw-b', 'gw-c'], 'doc-class');
  asA = pki.client('gw-a');
  asC = pki.client('gw-c');
  const dir = rgDirectoryJson(refB, [
    {
      homeCommunityId: HOME_A,
      name: 'A',
      certName: 'gw-a',
      ca: pki.ca,
      documents: { classCodes: ['IMAGES^^1.3.6.1.4.1.19376.1.2.6.1'] },
    },
    {
      homeCommunityId: HOME_C,
      name: 'C',
      certName: 'gw-c',
      ca: pki.ca,
      documents: { confidentialityCodes: ['R^^2.16.840.1.113883.5.25'] },
    },
  ]);
  const e = gatewayEnv(pki, 'gw-b', 'required');
  spool = e.spool;
  rg = await spawnGateway('responding', dir, e.env);
}, 120_000);

afterAll(async () => {
  await rg?.stop();
  await refB?.stop();
  await asA?.close();
  await asC?.close();
  pki?.remove();
});

const consentDoc = () => m.consents!.documentEntries.find((d) => d.patientId === TANAKA)!;
const kosDocs = () =>
  m.documentEntries.filter((d) => d.patientId === TANAKA && d.availabilityStatus.endsWith(':Approved'));

async function query(body: string, client: Agent) {
  const a = await soapCall(`${rg.url}/iti38`, Action.ITI38, body, { dispatcher: client });
  expect(a.status).toBe(200);
  return decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
}

describe('document-class policy per community', () => {
  it('leaves what the community may not see out of every answer, as if absent', async () => {
    const found = await query(encodeFindDocumentsRequest(TANAKA), asA);
    expect(found.status).toBe('Success');
    expect(found.errors).toEqual([]);
    expect(found.objects.map((o) => o.attr('id')).sort()).toEqual(
      kosDocs()
        .map((d) => d.entryUUID)
        .sort(),
    );

    // ObjectRefs too (the registry is asked for LeafClass, so that they can be screened).
    const refs = await query(encodeFindDocumentsRequest(TANAKA, { returnType: 'ObjectRef' }), asA);
    expect(refs.objects.every((o) => o.is(NS.rim, 'ObjectRef') && o.attr('home') === m.homeCommunityId)).toBe(
      true,
    );
    expect(refs.objects.map((o) => o.attr('id')).sort()).toEqual(
      kosDocs()
        .map((d) => d.entryUUID)
        .sort(),
    );

    // By id, and with everything that links it: the entry and its HasMember association are gone.
    const byId = await query(
      encodeAdhocQueryRequest({
        queryId: StoredQuery.GetDocuments,
        home: m.homeCommunityId,
        params: { $XDSDocumentEntryEntryUUID: `('${consentDoc().entryUUID}')` },
      }),
      asA,
    );
    expect(byId).toMatchObject({ status: 'Success', errors: [], objects: [] });
    const all = await query(
      encodeAdhocQueryRequest({
        queryId: StoredQuery.GetAll,
        params: {
          $patientId: `'${TANAKA}'`,
          $XDSDocumentEntryStatus: "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
          $XDSSubmissionSetStatus: "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
          $XDSFolderStatus: "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
        },
      }),
      asA,
    );
    expect(all.errors).toEqual([]);
    const linked = all.objects.filter((o) => o.is(NS.rim, 'Association'));
    expect(linked.length).toBeGreaterThan(0);
    for (const a of linked) expect(a.attr('targetObject')).not.toBe(consentDoc().entryUUID);
    expect(all.objects.some((o) => o.attr('id') === consentDoc().entryUUID)).toBe(false);

    // Community C may see no document of B at all: an ordinary empty answer.
    expect(await query(encodeFindDocumentsRequest(TANAKA), asC)).toMatchObject({
      status: 'Success',
      errors: [],
      objects: [],
    });
  });

  it('answers the retrieve of a filtered document as an unknown one, and audits why', async () => {
    const req = (uid: string) => ({
      homeCommunityId: m.homeCommunityId,
      repositoryUniqueId: m.repositoryUniqueId,
      documentUniqueId: uid,
    });
    const filtered = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest([req(consentDoc().uniqueId)]),
      { dispatcher: asA },
    );
    const unknown = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest([req(`${consentDoc().uniqueId}.9`)]),
      { dispatcher: asA },
    );
    expect(filtered.documents).toHaveLength(0);
    expect(filtered.errors.map((e) => [e.errorCode, e.location])).toEqual([
      ['XDSDocumentUniqueIdError', m.homeCommunityId],
    ]);
    expect(errorsWithoutIds(filtered.errors, [req(consentDoc().uniqueId)])).toEqual(
      errorsWithoutIds(unknown.errors, [req(`${consentDoc().uniqueId}.9`)]),
    );
    // The manifests may be retrieved; their images by A (released), not by C (never released to it).
    const manifests = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest(kosDocs().map((d) => req(d.uniqueId))),
      { dispatcher: asA },
    );
    expect(manifests.documents).toHaveLength(kosDocs().length);
    const study = m.patients.find((p) => p.id === TANAKA)!.studies[0];
    const imaging = encodeRetrieveImagingDocumentSetRequest(studyImagingRequest(m, study));
    expect(
      (await retrieveCall(`${rg.url}/rad75`, Action.RAD75, imaging, { dispatcher: asA })).errors,
    ).toEqual([]);
    const forC = await retrieveCall(`${rg.url}/rad75`, Action.RAD75, imaging, { dispatcher: asC });
    expect(forC.documents).toHaveLength(0);
    expect(new Set(forC.errors.map((e) => e.errorCode))).toEqual(new Set(['XDSDocumentUniqueIdError']));

    const views = await spoolRecords(spool, (vs) =>
      vs.some((v) => v.transaction === 'ITI-39' && /document-class/.test(v.outcomeDescription ?? '')),
    );
    const iti39 = views.find(
      (v) => v.transaction === 'ITI-39' && /document-class/.test(v.outcomeDescription ?? ''),
    )!;
    expect(iti39.outcomeDescription).toContain('classCode 57016-8^^2.16.840.1.113883.6.1 is not allowed');
    expect(iti39.patients).toEqual([]); // nothing was released: no patient is named from the lookup
    const iti38 = views.find(
      (v) =>
        v.transaction === 'ITI-38' &&
        v.patients.includes(TANAKA) &&
        /document-class/.test(v.outcomeDescription ?? ''),
    );
    expect(iti38?.outcome).toBe(4);
  });
});
