/**
 * Conformance, Initiating Imaging Gateway (XCA-I, RAD TF-1 29; RAD TF-3 4.69, 4.75), scenario by
 * scenario after the NIST XDS Toolkit's iig_2018-54xx tests and the ids_2018-4811 exception cases, run
 * against the product as processes: a consumer (this test) → the initiating gateway → a recording
 * proxy → the responding gateway of community A, B or C → the reference Imaging Document Sources.
 * Each scenario checks the RAD-69 answer (status, errors and their location, the instances with their
 * HomeCommunityId, byte for byte, schema validity) and the RAD-75 requests the gateway sent on (as
 * NIST's ValidateRad75Request does). Community C is asked asynchronously; community D is down.
 */
import { Action, isAnonymous, type ImagingDocumentRef } from '@xcai/shared';
import {
  asyncImagingRetrieve,
  conformanceSeed,
  conformanceSuite,
  expectRetrieve,
  expectSentTo,
  imagingClient,
  HOME,
  imagingRequest,
  instanceOf,
  OIDS,
  studyOf,
  TS_EXPLICIT_VR_LE,
  TS_IMPLICIT_VR_LE,
  TS_JPEG_BASELINE,
  TS_JPEG_LOSSLESS_SV1,
  TS_JPEG_LS_LOSSLESS,
  unknownInstance,
  type ConformanceSeed,
  type InstanceRef,
} from '../support/conformance';
import { spawnCommunity, type CommunityProcess } from '../support/federation';
import { closedPortUrl, spawnGateway, type GatewayProcess } from '../support/processes';
import { startRecorder, type Recorder } from '../support/recorder';
import { startReplyReceiver, type ReplyReceiver } from '../support/async-peer';

const scenario = conformanceSuite('iig', 'Initiating Imaging Gateway');
const ALL_TS = [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE, TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS];
const HOME_D = 'urn:oid:1.3.6.1.4.1.21367.13.70.214';
/** NIST's "unregistered community" of the iig tests. */
const UNKNOWN_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.102.999';

let seed: ConformanceSeed;
let iig: GatewayProcess;
let rec: Record<'A' | 'B' | 'C', Recorder>;
let receiver: ReplyReceiver;
const stops: (() => Promise<void>)[] = [];

function rigDirectory(home: string, sources: { id: string; url: string }[]) {
  return {
    homeCommunityId: home,
    name: `RIG ${home}`,
    local: { imagingDocumentSources: sources.map((s) => ({ repositoryUniqueId: s.id, url: s.url })) },
    communities: [{ homeCommunityId: HOME.I, name: 'IIG', replyTo: ['http://127.0.0.1:*'] }],
  };
}

beforeAll(async () => {
  seed = await conformanceSeed();
  const { dirs, manifests: m } = seed;
  const refs: CommunityProcess[] = await Promise.all([
    spawnCommunity([dirs.A, dirs.A2]),
    spawnCommunity([dirs.B]),
    spawnCommunity([dirs.C]),
  ]);
  stops.push(...refs.map((r) => r.stop));
  const [refA, refB, refC] = refs;
  const rigs = await Promise.all([
    spawnGateway(
      'responding',
      rigDirectory(HOME.A, [
        { id: m.A.idsRepositoryUniqueId, url: refA.ids },
        { id: m.A2.idsRepositoryUniqueId, url: refA.ids },
      ]),
    ),
    spawnGateway('responding', rigDirectory(HOME.B, [{ id: m.B.idsRepositoryUniqueId, url: refB.ids }])),
    spawnGateway('responding', rigDirectory(HOME.C, [{ id: m.C.idsRepositoryUniqueId, url: refC.ids }])),
  ]);
  stops.push(...rigs.map((g) => g.stop));
  const [a, b, c] = await Promise.all(rigs.map((g) => startRecorder(g.url)));
  rec = { A: a, B: b, C: c };
  stops.push(a.close, b.close, c.close);
  const community = (name: string, home: string, url: string, extra: object = {}) => ({
    homeCommunityId: home,
    name,
    endpoints: { rad75: { url: `${url}/rad75` } },
    ...extra,
  });
  iig = await spawnGateway('initiating', {
    homeCommunityId: HOME.I,
    name: 'IIG',
    communities: [
      community('A', HOME.A, a.url),
      community('B', HOME.B, b.url),
      community('C', HOME.C, c.url, { async: true }),
      community('D', HOME_D, await closedPortUrl()),
    ],
    consumers: [{ name: 'PACS', replyTo: ['http://127.0.0.1:*'] }],
  });
  stops.push(iig.stop);
  receiver = await startReplyReceiver();
  stops.push(receiver.close);
}, 120_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

beforeEach(() => Object.values(rec).forEach((r) => r.clear()));

const A = (i: number, j = 0, k = 0) => instanceOf(seed, 'A', i, j, k);
const rad69 = imagingClient(() => `${iig.url}/rad69`, Action.RAD69);
const from = (home: string, ...refs: InstanceRef[]) => refs.map((ref) => ({ ref, home }));
/** The RAD-75 the gateway sent to each community: exactly these documents, or nothing. */
const expectRad75 = (sent: Partial<Record<'A' | 'B' | 'C', ImagingDocumentRef[]>>, ts: string[]) =>
  expectSentTo(rec, sent, Action.RAD75, ts);
/** The IIG names the community an error is about in its codeContext. */
const naming = (home: string) => () => [home];

scenario('iig_2018-5401a', 'single image, one responding gateway', 'NIST iig_2018-5401a', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  expectRetrieve(await rad69([A(0)], ts), { status: 'Success', documents: from(HOME.A, A(0)), errors: [] });
  expectRad75({ A: [A(0)] }, ts);
});

scenario('iig_2018-5401b', 'two imaging studies, one responding gateway', 'NIST iig_2018-5401b', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  const docs = [A(0), A(2)];
  expectRetrieve(await rad69(docs, ts), { status: 'Success', documents: from(HOME.A, ...docs), errors: [] });
  expectRad75({ A: docs }, ts);
});

scenario('iig_2018-5401c', 'multi-image study, one responding gateway', 'NIST iig_2018-5401c', async () => {
  const ts = [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE];
  const docs = studyOf(seed, 'A', 2);
  expectRetrieve(await rad69(docs, ts), { status: 'Success', documents: from(HOME.A, ...docs), errors: [] });
  expectRad75({ A: docs }, ts);
});

scenario('iig_2018-5402a', 'JPEG Lossless only, the stored bytes', 'NIST iig_2018-5402a', async () => {
  const ts = [TS_JPEG_LOSSLESS_SV1];
  expectRetrieve(await rad69([A(1)], ts), { status: 'Success', documents: from(HOME.A, A(1)), errors: [] });
  expectRad75({ A: [A(1)] }, ts);
});

scenario(
  'iig_2018-5402b',
  'two transfer syntaxes, the image held in the second',
  'NIST iig_2018-5402b',
  async () => {
    const ts = [TS_JPEG_BASELINE, TS_JPEG_LOSSLESS_SV1];
    expectRetrieve(await rad69([A(1)], ts), { status: 'Success', documents: from(HOME.A, A(1)), errors: [] });
    expectRad75({ A: [A(1)] }, ts);
  },
);

scenario(
  'iig_2018-5403a',
  'two responding gateways, one consolidated answer',
  'NIST iig_2018-5403a',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const b = instanceOf(seed, 'B', 0);
    expectRetrieve(await rad69([A(0), b], ts), {
      status: 'Success',
      documents: [...from(HOME.A, A(0)), ...from(HOME.B, b)],
      errors: [],
    });
    expectRad75({ A: [A(0)], B: [b] }, ts);
  },
);

scenario(
  'iig-three-communities',
  'three communities, one of them asked asynchronously',
  'RAD TF-1 29.3.3; NIST iig_2018-5403a',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE, TS_JPEG_LS_LOSSLESS];
    const b = instanceOf(seed, 'B', 0, 0, 1);
    const c = instanceOf(seed, 'C', 0);
    expectRetrieve(await rad69([A(0), b, c], ts), {
      status: 'Success',
      documents: [...from(HOME.A, A(0)), ...from(HOME.B, b), ...from(HOME.C, c)],
      errors: [],
    });
    expectRad75({ A: [A(0)], B: [b], C: [c] }, ts);
  },
);

scenario(
  'iig_2018-5404a',
  'a transfer syntax the source lacks',
  'NIST iig_2018-5404a; RAD TF-3 4.69.5',
  async () => {
    const ts = [TS_JPEG_BASELINE];
    expectRetrieve(await rad69([A(0)], ts), {
      status: 'Failure',
      documents: [],
      errors: [['XDSRepositoryError', A(0).documentUniqueId]],
      errorContext: naming(HOME.A),
    });
    expectRad75({ A: [A(0)] }, ts);
  },
);

scenario('iig_2018-5404b', 'unknown SOP Instance UID', 'NIST iig_2018-5404b; RAD TF-3 4.69.5', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  const unknown = unknownInstance(A(0));
  expectRetrieve(await rad69([unknown], ts), {
    status: 'Failure',
    documents: [],
    errors: [['XDSDocumentUniqueIdError', unknown.documentUniqueId]],
    errorContext: naming(HOME.A),
  });
  expectRad75({ A: [unknown] }, ts);
});

scenario('iig_2018-5404c', 'unknown homeCommunityId', 'NIST iig_2018-5404c; RAD TF-3 4.69.5', async () => {
  const doc = {
    ...A(0),
    homeCommunityId: UNKNOWN_HOME,
    repositoryUniqueId: '1.3.6.1.4.1.21367.13.71.102.999',
  };
  expectRetrieve(await rad69([doc], [TS_EXPLICIT_VR_LE]), {
    status: 'Failure',
    documents: [],
    errors: [['XDSUnknownCommunity', doc.documentUniqueId]],
    errorContext: naming(UNKNOWN_HOME),
  });
  expectRad75({}, []);
});

scenario('iig_2018-5405a', 'PartialSuccess, one responding gateway', 'NIST iig_2018-5405a', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  const unknown = unknownInstance(A(2, 1, 2));
  expectRetrieve(await rad69([A(0), unknown], ts), {
    status: 'PartialSuccess',
    documents: from(HOME.A, A(0)),
    errors: [['XDSDocumentUniqueIdError', unknown.documentUniqueId]],
    errorContext: naming(HOME.A),
  });
  expectRad75({ A: [A(0), unknown] }, ts);
});

scenario(
  'iig_2018-5405b',
  'PartialSuccess across two responding gateways',
  'NIST iig_2018-5405b',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const unknown = unknownInstance(instanceOf(seed, 'B', 0));
    expectRetrieve(await rad69([A(0), unknown], ts), {
      status: 'PartialSuccess',
      documents: from(HOME.A, A(0)),
      errors: [['XDSDocumentUniqueIdError', unknown.documentUniqueId]],
      errorContext: naming(HOME.B),
    });
    expectRad75({ A: [A(0)], B: [unknown] }, ts);
  },
);

scenario(
  'iig-rig-down',
  'PartialSuccess with one responding gateway down',
  'ITI TF-2 3.18.4.1.3 (XDSUnavailableCommunity); RAD TF-3 4.69.5',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const d = { ...A(0, 0, 0), homeCommunityId: HOME_D, documentUniqueId: `${OIDS.A}.77.1` };
    expectRetrieve(await rad69([A(0), d], ts), {
      status: 'PartialSuccess',
      documents: from(HOME.A, A(0)),
      errors: [['XDSUnavailableCommunity', d.documentUniqueId]],
      errorContext: (e) => (e.errorCode === 'XDSUnavailableCommunity' ? [HOME_D] : []),
    });
    expectRad75({ A: [A(0)] }, ts);
  },
);

scenario(
  'iig-mixed-syntaxes',
  'one study in four transfer syntaxes, all accepted',
  'NIST iig_2018-5402b; RAD TF-3 4.69.4.1.2',
  async () => {
    const docs = studyOf(seed, 'A', 3);
    expect(new Set(docs.map((d) => d.instance.transferSyntaxUid))).toEqual(new Set(ALL_TS));
    expectRetrieve(await rad69(docs, ALL_TS), {
      status: 'Success',
      documents: from(HOME.A, ...docs),
      errors: [],
    });
    expectRad75({ A: docs }, ALL_TS);
  },
);

scenario(
  'iig-mixed-syntaxes-uncompressed',
  'one study in four transfer syntaxes, only uncompressed accepted',
  'NIST iig_2018-5404a; RAD TF-3 4.69.5',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE];
    const docs = studyOf(seed, 'A', 3);
    const held = docs.filter((d) => ts.includes(d.instance.transferSyntaxUid));
    const compressed = docs.filter((d) => !ts.includes(d.instance.transferSyntaxUid));
    expectRetrieve(await rad69(docs, ts), {
      status: 'PartialSuccess',
      documents: from(HOME.A, ...held),
      errors: compressed.map((d) => ['XDSRepositoryError', d.documentUniqueId]),
      errorContext: naming(HOME.A),
    });
    expectRad75({ A: docs }, ts);
  },
);

scenario(
  'ids_2018-4811/case-01',
  'unknown Imaging Document Source',
  'NIST ids_2018-4811 case-01, rig_2018-5424c',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const doc = { ...A(0), repositoryUniqueId: `${OIDS.A}.999` };
    expectRetrieve(await rad69([doc], ts), {
      status: 'Failure',
      documents: [],
      errors: [['XDSUnknownRepositoryId', doc.documentUniqueId]],
      errorContext: naming(HOME.A),
    });
    expectRad75({ A: [doc] }, ts);
  },
);

scenario(
  'ids_2018-4811/case-03',
  'SOP Instance UID not in the requested series',
  'NIST ids_2018-4811 case-03',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE];
    const wrong = { ...A(2, 0, 1), seriesInstanceUid: A(2, 1, 0).seriesInstanceUid };
    expectRetrieve(await rad69([wrong], ts), {
      status: 'Failure',
      documents: [],
      errors: [['XDSDocumentUniqueIdError', wrong.documentUniqueId]],
      errorContext: naming(HOME.A),
    });
    expectRad75({ A: [wrong] }, ts);
  },
);

scenario(
  'ids_2018-4811/case-04',
  'SOP Instance UID not in the requested study',
  'NIST ids_2018-4811 case-04',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const wrong = {
      ...A(0),
      studyInstanceUid: A(2).studyInstanceUid,
      seriesInstanceUid: A(2).seriesInstanceUid,
    };
    expectRetrieve(await rad69([wrong], ts), {
      status: 'Failure',
      documents: [],
      errors: [['XDSDocumentUniqueIdError', wrong.documentUniqueId]],
    });
    expectRad75({ A: [wrong] }, ts);
  },
);

describe('requests the gateway refuses before routing (no RAD-75 is sent)', () => {
  const refused: [string, string, string, (d: InstanceRef) => ImagingDocumentRef, string[], number][] = [
    [
      'ids_2018-4811/case-05',
      'empty Study Instance UID',
      'NIST ids_2018-4811 case-05; RAD TF-3 4.69.4.1.2',
      (d) => ({ ...d, studyInstanceUid: '' }),
      [TS_EXPLICIT_VR_LE],
      1,
    ],
    [
      'ids_2018-4811/case-06',
      'empty Series Instance UID',
      'NIST ids_2018-4811 case-06',
      (d) => ({ ...d, seriesInstanceUid: '' }),
      [TS_EXPLICIT_VR_LE],
      1,
    ],
    [
      'ids_2018-4811/case-07',
      'empty Study and Series Instance UIDs',
      'NIST ids_2018-4811 case-07',
      (d) => ({ ...d, studyInstanceUid: '', seriesInstanceUid: '' }),
      [TS_EXPLICIT_VR_LE],
      2,
    ],
    ['ids_2018-4811/case-08', 'empty transfer syntax list', 'NIST ids_2018-4811 case-08', (d) => d, [], 1],
  ];
  for (const [id, title, mirrors, change, ts, n] of refused) {
    scenario(id, title, mirrors, async () => {
      // a request-level error, about no instance: at our own homeCommunityId
      expectRetrieve(await rad69([change(A(0))], ts), {
        status: 'Failure',
        documents: [],
        errors: Array.from({ length: n }, () => ['XDSRepositoryError', HOME.I] as [string, string]),
      });
      expectRad75({}, []);
    });
  }

  scenario(
    'iig-missing-home',
    'DocumentRequest without HomeCommunityId for another community',
    'RAD TF-3 4.69.4.1.2 (Gazelle RAD69-001); ITI TF-2 3.43.4.1.2',
    async () => {
      const doc = { ...A(0), homeCommunityId: undefined };
      expectRetrieve(await rad69([doc], [TS_EXPLICIT_VR_LE]), {
        status: 'Failure',
        documents: [],
        errors: [['XDSMissingHomeCommunityId', doc.documentUniqueId]],
      });
      expectRad75({}, []);
    },
  );
});

scenario(
  'ids_2018-4811/case-09',
  'a transfer syntax UID nobody knows',
  'NIST ids_2018-4811 case-09',
  async () => {
    const ts = ['1.2.840.10008.1.2.1.999'];
    expectRetrieve(await rad69([A(0)], ts), {
      status: 'Failure',
      documents: [],
      errors: [['XDSRepositoryError', A(0).documentUniqueId]],
      errorContext: naming(HOME.A),
    });
    expectRad75({ A: [A(0)] }, ts);
  },
);

scenario(
  'iig-plain-soap',
  'RAD-69 as a plain SOAP message (not MTOM)',
  'ITI TF-2 3.43.5, Appendix V; RAD TF-3 4.69',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    expectRetrieve(await rad69([A(0)], ts, { plain: true }), {
      status: 'Success',
      documents: from(HOME.A, A(0)),
      errors: [],
    });
    expectRad75({ A: [A(0)] }, ts);
  },
);

scenario(
  'iig-async-rad69',
  'RAD-69 served asynchronously (ReplyTo)',
  'RAD TF-3 4.69.4.3; ITI TF-2 Appendix V.3',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE, TS_JPEG_LOSSLESS_SV1];
    const docs = [A(0), A(1)];
    const req = imagingRequest(docs, ts);
    const a = await asyncImagingRetrieve(
      `${iig.url}/rad69`,
      Action.RAD69,
      Action.RAD69Response,
      req,
      receiver,
    );
    expectRetrieve(a, { status: 'Success', documents: from(HOME.A, ...docs), errors: [] });
    expectRad75({ A: docs }, ts);
  },
);

scenario(
  'iig-async-rad75',
  'RAD-75 sent asynchronously to a community that asks for it',
  'RAD TF-3 4.75.4.2; RAD TF-1 29.1.1',
  async () => {
    const ts = [TS_JPEG_LS_LOSSLESS];
    const c = instanceOf(seed, 'C', 0);
    expectRetrieve(await rad69([c], ts), { status: 'Success', documents: from(HOME.C, c), errors: [] });
    expectRad75({ C: [c] }, ts);
    const replyTo = rec.C.requests[0].envelope.wsa.replyTo;
    expect(isAnonymous(replyTo)).toBe(false);
    expect(replyTo).toBe(`${iig.url}/async-response`);
  },
);
