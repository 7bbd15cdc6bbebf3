/**
 * Conformance, XCA Initiating and Responding Gateway (ITI TF-2 3.18, 3.38, 3.39, 3.43): the error rules
 * and where RegistryError/@location points, against the product as processes — the initiating gateway
 * of community A (its own registry, repository and Imaging Document Source: the reference community)
 * and the responding gateway of community B; community D is down. The requests the initiating gateway
 * sends to B pass a recording proxy and are checked too (ITI-38 with the patient id, ITI-39 with a
 * HomeCommunityId in every DocumentRequest: ITI TF-2 3.38.4.1.2.1, 3.39.4.1.2).
 */
import {
  Action,
  APPROVED_STATUS,
  decodeAdhocQueryResponse,
  decodeRetrieveDocumentSetRequest,
  encodeAdhocQueryRequest,
  encodeFindDocumentsRequest,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  StoredQuery,
  type AdhocQueryResponse,
  type DocumentRequest,
} from '@xcai/shared';
import { retrieveCall, soapCall } from '../support/client';
import {
  conformanceSeed,
  conformanceSuite,
  expectRetrieve,
  HOME,
  imagingRequest,
  instanceOf,
  manifestOf,
  OIDS,
  PATIENT,
  TS_EXPLICIT_VR_LE,
  type ConformanceSeed,
  type StoredDocument,
} from '../support/conformance';
import { spawnCommunity } from '../support/federation';
import { closedPortUrl, spawnGateway, type GatewayProcess } from '../support/processes';
import { startRecorder, type Recorder } from '../support/recorder';
import { xsdErrors } from '../support/xsd';

const scenario = conformanceSuite('xca', 'XCA Initiating / Responding Gateway');
const HOME_D = 'urn:oid:1.3.6.1.4.1.21367.13.70.214';
const UNKNOWN_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.299';
const NOBODY = `CF9999^^^&1.3.6.1.4.1.21367.13.20.1000&ISO`;

let seed: ConformanceSeed;
let ig: GatewayProcess, rg: GatewayProcess;
let recB: Recorder;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  seed = await conformanceSeed();
  const { dirs, manifests: m } = seed;
  const [refA, refB] = await Promise.all([spawnCommunity([dirs.A, dirs.A2]), spawnCommunity([dirs.B])]);
  stops.push(refA.stop, refB.stop);
  rg = await spawnGateway('responding', {
    homeCommunityId: HOME.B,
    name: 'RG B',
    local: {
      registry: { url: refB.registry },
      repositories: [{ repositoryUniqueId: m.B.repositoryUniqueId, url: refB.repository }],
      imagingDocumentSources: [{ repositoryUniqueId: m.B.idsRepositoryUniqueId, url: refB.ids }],
    },
    communities: [{ homeCommunityId: HOME.A, name: 'A' }],
    policy: { unknownPatient: 'XDSUnknownPatientId' },
  });
  stops.push(rg.stop);
  recB = await startRecorder(rg.url);
  stops.push(recB.close);
  const deadUrl = await closedPortUrl();
  ig = await spawnGateway('initiating', {
    homeCommunityId: HOME.A,
    name: 'IG A',
    local: {
      registry: { url: refA.registry },
      repositories: [
        { repositoryUniqueId: m.A.repositoryUniqueId, url: refA.repository },
        { repositoryUniqueId: m.A2.repositoryUniqueId, url: refA.repository },
      ],
      imagingDocumentSources: [{ repositoryUniqueId: m.A.idsRepositoryUniqueId, url: refA.ids }],
    },
    communities: [
      {
        homeCommunityId: HOME.B,
        name: 'B',
        endpoints: { iti38: `${recB.url}/iti38`, iti39: `${recB.url}/iti39`, rad75: `${recB.url}/rad75` },
      },
      { homeCommunityId: HOME_D, name: 'D', endpoints: { iti39: `${deadUrl}/iti39` } },
    ],
  });
  stops.push(ig.stop);
}, 120_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

beforeEach(() => recB.clear());

async function query(url: string, action: string, body: string): Promise<AdhocQueryResponse> {
  const a = await soapCall(url, action, body);
  expect(a.status).toBe(200);
  expect(xsdErrors([a.xml])).toBe('');
  return decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
}
const iti18 = (body: string) => query(`${ig.url}/iti18`, Action.ITI18, body);
const iti38 = (body: string) => query(`${rg.url}/iti38`, Action.ITI38, body);
const iti43 = (docs: DocumentRequest[]) =>
  retrieveCall(`${ig.url}/iti43`, Action.ITI43, encodeRetrieveDocumentSetRequest(docs));
const iti39 = (docs: DocumentRequest[]) =>
  retrieveCall(`${rg.url}/iti39`, Action.ITI39, encodeRetrieveDocumentSetRequest(docs));
const located = (r: AdhocQueryResponse) => r.errors.map((e) => [e.errorCode, e.location]);
const getDocuments = (uniqueId: string, home?: string) =>
  encodeAdhocQueryRequest({
    queryId: StoredQuery.GetDocuments,
    home,
    params: { $XDSDocumentEntryUniqueId: `('${uniqueId}')` },
  });
const kosA = () => manifestOf(seed, 'A', 0);
const kosB = () => manifestOf(seed, 'B', 0);
const unknownDocument = (d: StoredDocument): StoredDocument => ({
  ...d,
  documentUniqueId: `${d.documentUniqueId}.999`,
});
/** The ITI-39 the initiating gateway sent to B: these documents, each with HomeCommunityId (3.39.4.1.2). */
function expectIti39(docs: DocumentRequest[]): void {
  expect(recB.requests).toHaveLength(1);
  const sent = recB.requests[0];
  expect(sent.envelope.wsa.action).toBe(Action.ITI39);
  expect(xsdErrors([sent.xml])).toBe('');
  const key = (d: DocumentRequest) => `${d.homeCommunityId}|${d.repositoryUniqueId}|${d.documentUniqueId}`;
  expect(decodeRetrieveDocumentSetRequest(sent.envelope.payload).map(key).sort()).toEqual(
    docs.map(key).sort(),
  );
}

describe('ITI-38 at the Responding Gateway: every RegistryError at our homeCommunityId (ITI TF-2 3.38.4.1.3)', () => {
  scenario(
    'xca-iti38-objects',
    'FindDocuments: home on every object',
    'ITI TF-2 3.38.4.1.3; Gazelle ITI38-009',
    async () => {
      const r = await iti38(encodeFindDocumentsRequest(PATIENT));
      expect([r.status, r.errors]).toEqual(['Success', []]);
      expect(r.objects.length).toBeGreaterThan(0);
      expect(r.objects.every((o) => o.attr('home') === HOME.B)).toBe(true);
    },
  );

  scenario(
    'xca-iti38-unknown-home',
    'a home it does not serve',
    'ITI TF-2 3.38.4.1.3; Gazelle ITI38-011',
    async () => {
      const r = await iti38(getDocuments(kosB().documentUniqueId, UNKNOWN_HOME));
      expect([r.status, located(r)]).toEqual(['Failure', [['XDSUnknownCommunity', HOME.B]]]);
      expect(r.errors[0].codeContext).toContain(UNKNOWN_HOME);
    },
  );

  scenario(
    'xca-iti38-missing-home',
    'a query by id without home',
    'ITI TF-2 3.38.4.1.3; Gazelle ITI38-012',
    async () => {
      const r = await iti38(getDocuments(kosB().documentUniqueId));
      expect([r.status, located(r)]).toEqual(['Failure', [['XDSMissingHomeCommunityId', HOME.B]]]);
    },
  );

  scenario(
    'xca-iti38-unknown-patient',
    'an unknown patient (policy XDSUnknownPatientId)',
    'ITI TF-2 3.38.4.1.2.2; Gazelle ITI38-008',
    async () => {
      const r = await iti38(encodeFindDocumentsRequest(NOBODY));
      expect([r.status, located(r), r.objects]).toEqual(['Failure', [['XDSUnknownPatientId', HOME.B]], []]);
    },
  );
});

describe('ITI-39 at the Responding Gateway: every RegistryError at our homeCommunityId (ITI TF-2 3.39.4.1.3)', () => {
  scenario(
    'xca-iti39-unknown-document',
    'an unknown document',
    'ITI TF-2 3.39.4.1.3; Gazelle ITI39-012',
    async () => {
      const doc = unknownDocument(kosB());
      const a = await iti39([doc]);
      expectRetrieve(a, {
        status: 'Failure',
        documents: [],
        errors: [['XDSDocumentUniqueIdError', HOME.B]],
        errorContext: () => [doc.documentUniqueId],
      });
    },
  );

  scenario(
    'xca-iti39-unknown-repository',
    'an unknown repository',
    'ITI TF-2 3.39.4.1.3; Gazelle ITI39-012',
    async () => {
      const doc = { ...kosB(), repositoryUniqueId: `${OIDS.B}.2.999` };
      expectRetrieve(await iti39([doc]), {
        status: 'Failure',
        documents: [],
        errors: [['XDSUnknownRepositoryId', HOME.B]],
        errorContext: () => [doc.documentUniqueId],
      });
    },
  );

  scenario(
    'xca-iti39-missing-and-foreign-home',
    'PartialSuccess: one document, one without HomeCommunityId, one of another community',
    'ITI TF-2 3.39.1, 3.39.4.1.3',
    async () => {
      const good = kosB();
      const missing = { ...unknownDocument(good), homeCommunityId: undefined };
      const foreign = {
        ...unknownDocument(good),
        documentUniqueId: `${good.documentUniqueId}.998`,
        homeCommunityId: HOME.C,
      };
      expectRetrieve(await iti39([good, missing, foreign]), {
        status: 'PartialSuccess',
        documents: [{ ref: good, home: HOME.B }],
        errors: [
          ['XDSMissingHomeCommunityId', HOME.B],
          ['XDSUnknownCommunity', HOME.B],
        ],
      });
    },
  );
});

describe('ITI-43 at the Initiating Gateway: errors at the community they are about (XCA)', () => {
  scenario(
    'xca-iti43-two-communities',
    'manifests of our community and of B, byte-exact',
    'ITI TF-2 3.43.4.1.3, 3.39.4.1.3',
    async () => {
      expectRetrieve(await iti43([kosA(), kosB()]), {
        status: 'Success',
        documents: [
          { ref: kosA(), home: HOME.A },
          { ref: kosB(), home: HOME.B },
        ],
        errors: [],
      });
      expectIti39([kosB()]);
    },
  );

  scenario(
    'xca-iti43-relayed',
    'a document B does not have, relayed at B',
    'ITI TF-2 3.39.4.1.3 (IG consolidation)',
    async () => {
      const doc = unknownDocument(kosB());
      expectRetrieve(await iti43([kosA(), doc]), {
        status: 'PartialSuccess',
        documents: [{ ref: kosA(), home: HOME.A }],
        errors: [['XDSDocumentUniqueIdError', HOME.B]],
        errorContext: () => [doc.documentUniqueId],
      });
      expectIti39([doc]);
    },
  );

  scenario(
    'xca-iti43-unavailable',
    'a community that is down',
    'ITI TF-2 3.18.4.1.3, 3.39.4.1.3 (XDSUnavailableCommunity)',
    async () => {
      const d = { ...kosB(), homeCommunityId: HOME_D };
      expectRetrieve(await iti43([kosB(), d]), {
        status: 'PartialSuccess',
        documents: [{ ref: kosB(), home: HOME.B }],
        errors: [['XDSUnavailableCommunity', HOME_D]],
        errorContext: () => [d.documentUniqueId],
      });
    },
  );

  scenario('xca-iti43-unknown-community', 'an unknown homeCommunityId', 'ITI TF-2 3.43.4.1.3', async () => {
    const doc = { ...kosB(), homeCommunityId: UNKNOWN_HOME };
    expectRetrieve(await iti43([doc]), {
      status: 'Failure',
      documents: [],
      errors: [['XDSUnknownCommunity', UNKNOWN_HOME]],
      errorContext: () => [doc.documentUniqueId],
    });
    expect(recB.requests).toEqual([]);
  });

  scenario(
    'xca-iti43-missing-home',
    'no HomeCommunityId, a repository that is not ours',
    'ITI TF-2 3.43.4.1.2 (XDSMissingHomeCommunityId)',
    async () => {
      const doc = { ...kosB(), homeCommunityId: undefined };
      expectRetrieve(await iti43([doc]), {
        status: 'Failure',
        documents: [],
        errors: [['XDSMissingHomeCommunityId', HOME.A]],
        errorContext: () => [doc.documentUniqueId],
      });
      expect(recB.requests).toEqual([]);
    },
  );

  scenario(
    'xca-iti43-no-home-ours',
    'no HomeCommunityId, one of our repositories: ours',
    'ITI TF-2 3.43.4.1.2 (home only when the entry had one), 3.43.4.2.2',
    async () => {
      const doc = { ...kosA(), homeCommunityId: undefined };
      // the DocumentResponse carries no HomeCommunityId either (ITI TF-2 3.43.4.2.2)
      expectRetrieve(await iti43([doc]), {
        status: 'Success',
        documents: [{ ref: doc, home: undefined }],
        errors: [],
      });
    },
  );
});

describe('ITI-18 at the Initiating Gateway (ITI TF-2 3.18.4.1.3, 3.38.4.1.3)', () => {
  scenario(
    'xca-iti18-fan-out',
    'FindDocuments: our registry and B, home on every object',
    'ITI TF-2 3.18.4.1.3',
    async () => {
      const r = await iti18(encodeFindDocumentsRequest(PATIENT));
      expect([r.status, r.errors]).toEqual(['Success', []]);
      const homes = new Set(r.objects.map((o) => o.attr('home')));
      expect(homes).toEqual(new Set([HOME.A, HOME.B]));
      const approved = (k: 'A' | 'A2' | 'B') =>
        seed.manifests[k].documentEntries.filter((d) => d.availabilityStatus === APPROVED_STATUS).length;
      expect(r.objects.length).toBe(approved('A') + approved('A2') + approved('B'));
      // the ITI-38 sent on: the patient id, no home needed (3.38.4.1.2.1)
      expect(recB.requests.map((q) => q.envelope.wsa.action)).toEqual([Action.ITI38]);
      expect(recB.requests[0].xml).toContain(PATIENT.split('^')[0]);
    },
  );

  scenario(
    'xca-iti18-missing-home',
    'GetDocuments without home: Failure, even for an entry of our own registry',
    'ITI TF-2 3.18.4.1.3 (XDSMissingHomeCommunityId)',
    async () => {
      const r = await iti18(getDocuments(kosA().documentUniqueId));
      expect([r.status, located(r), r.objects]).toEqual([
        'Failure',
        [['XDSMissingHomeCommunityId', HOME.A]],
        [],
      ]);
    },
  );

  scenario(
    'xca-iti18-home',
    'GetDocuments with the home of B: only B is asked',
    'ITI TF-2 3.18.4.1.3; Gazelle ITI38-001',
    async () => {
      const r = await iti18(getDocuments(kosB().documentUniqueId, HOME.B));
      expect([r.status, r.objects.map((o) => o.attr('home'))]).toEqual(['Success', [HOME.B]]);
      expect(recB.requests).toHaveLength(1);
      expect(recB.requests[0].xml).toContain(`home="${HOME.B}"`);
    },
  );

  scenario(
    'xca-iti18-unknown-home',
    'GetDocuments with an unknown home',
    'ITI TF-2 3.18.4.1.3 (XDSUnknownCommunity)',
    async () => {
      const r = await iti18(getDocuments(kosB().documentUniqueId, UNKNOWN_HOME));
      expect([r.status, located(r)]).toEqual(['Failure', [['XDSUnknownCommunity', UNKNOWN_HOME]]]);
      expect(recB.requests).toEqual([]);
    },
  );

  scenario(
    'xca-iti18-unknown-patient',
    "an unknown patient: B's XDSUnknownPatientId not passed on, our registry's at our home",
    'ITI TF-2 3.38.4.1.3',
    async () => {
      const r = await iti18(encodeFindDocumentsRequest(NOBODY));
      expect([r.status, located(r), r.objects]).toEqual(['Failure', [['XDSUnknownPatientId', HOME.A]], []]);
      expect(recB.requests).toHaveLength(1);
    },
  );
});

scenario(
  'xca-rad69-no-home-ours',
  'RAD-69 without HomeCommunityId for our own Imaging Document Source: ours',
  'RAD TF-3 4.69.4.1.2; ITI TF-2 3.43.4.1.2',
  async () => {
    const doc = { ...instanceOf(seed, 'A', 0), homeCommunityId: undefined };
    const a = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(imagingRequest([doc], [TS_EXPLICIT_VR_LE])),
    );
    expectRetrieve(a, { status: 'Success', documents: [{ ref: doc, home: undefined }], errors: [] });
    expect(recB.requests).toEqual([]);
  },
);
