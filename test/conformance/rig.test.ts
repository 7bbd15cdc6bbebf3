/**
 * Conformance, Responding Imaging Gateway (XCA-I, RAD TF-3 4.75), scenario by scenario after the NIST
 * XDS Toolkit's rig_2018-542x tests, against the product as a process: an initiating imaging gateway
 * (this test) → the responding gateway of community A → recording proxies → Imaging Document Sources
 * E and F (NIST's names; two sources of the reference community) and G (down). Each scenario checks
 * the RAD-75 answer — every RegistryError located at community A's homeCommunityId (RAD TF-3 4.75,
 * Gazelle RAD75-004), the instance named in codeContext — and the RAD-69 requests sent on to each
 * source (as NIST's ValidateRad69Request does).
 */
import { Action, type ImagingDocumentRef } from '@xcai/shared';
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
import { spawnCommunity } from '../support/federation';
import { closedPortUrl, spawnGateway, type GatewayProcess } from '../support/processes';
import { startRecorder, type Recorder } from '../support/recorder';
import { startReplyReceiver, type ReplyReceiver } from '../support/async-peer';

const scenario = conformanceSuite('rig', 'Responding Imaging Gateway');
const ALL_TS = [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE, TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS];
const IDS_G = `${OIDS.A}.23`;

let seed: ConformanceSeed;
let rig: GatewayProcess;
let rec: Record<'E' | 'F', Recorder>;
let receiver: ReplyReceiver;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  seed = await conformanceSeed();
  const ref = await spawnCommunity([seed.dirs.A, seed.dirs.A2]);
  stops.push(ref.stop);
  const origin = new URL(ref.ids).origin;
  const [e, f] = await Promise.all([startRecorder(origin), startRecorder(origin)]);
  rec = { E: e, F: f };
  stops.push(e.close, f.close);
  const deadUrl = await closedPortUrl();
  rig = await spawnGateway('responding', {
    homeCommunityId: HOME.A,
    name: 'RIG A',
    local: {
      imagingDocumentSources: [
        { repositoryUniqueId: seed.manifests.A.idsRepositoryUniqueId, url: `${e.url}/ids` },
        { repositoryUniqueId: seed.manifests.A2.idsRepositoryUniqueId, url: `${f.url}/ids` },
        { repositoryUniqueId: IDS_G, url: `${deadUrl}/ids` },
      ],
    },
    communities: [{ homeCommunityId: HOME.I, name: 'IIG', replyTo: ['http://127.0.0.1:*'] }],
  });
  stops.push(rig.stop);
  receiver = await startReplyReceiver();
  stops.push(receiver.close);
}, 120_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

beforeEach(() => Object.values(rec).forEach((r) => r.clear()));

const E = (i: number, j = 0, k = 0) => instanceOf(seed, 'A', i, j, k);
const F = (k = 0) => instanceOf(seed, 'A2', 0, 0, k);
const rad75 = imagingClient(() => `${rig.url}/rad75`, Action.RAD75);
const ours = (...refs: InstanceRef[]) => refs.map((ref) => ({ ref, home: HOME.A }));
/** The RAD-69 the gateway sent to each source: exactly these documents, or nothing. */
const expectRad69 = (sent: Partial<Record<'E' | 'F', ImagingDocumentRef[]>>, ts: string[]) =>
  expectSentTo(rec, sent, Action.RAD69, ts);
/** RAD75-004: location is our home; the instance is named in codeContext. */
const at = (code: string): [string, string] => [code, HOME.A];
const naming = (uid: string) => () => [uid];

scenario('rig_2018-5421a', 'single image, one Imaging Document Source', 'NIST rig_2018-5421a', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  expectRetrieve(await rad75([E(0)], ts), { status: 'Success', documents: ours(E(0)), errors: [] });
  expectRad69({ E: [E(0)] }, ts);
});

scenario('rig_2018-5421b', 'two studies, one Imaging Document Source', 'NIST rig_2018-5421b', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  expectRetrieve(await rad75([E(0), E(2)], ts), {
    status: 'Success',
    documents: ours(E(0), E(2)),
    errors: [],
  });
  expectRad69({ E: [E(0), E(2)] }, ts);
});

scenario(
  'rig_2018-5421c',
  'multi-image study from Imaging Document Source F',
  'NIST rig_2018-5421c',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const docs = studyOf(seed, 'A2', 0);
    expectRetrieve(await rad75(docs, ts), { status: 'Success', documents: ours(...docs), errors: [] });
    expectRad69({ F: docs }, ts);
  },
);

scenario('rig_2018-5422a', 'JPEG Lossless only, the stored bytes', 'NIST rig_2018-5422a', async () => {
  const ts = [TS_JPEG_LOSSLESS_SV1];
  expectRetrieve(await rad75([E(1)], ts), { status: 'Success', documents: ours(E(1)), errors: [] });
  expectRad69({ E: [E(1)] }, ts);
});

scenario(
  'rig_2018-5422b',
  'two transfer syntaxes, the image held in the second',
  'NIST rig_2018-5422b',
  async () => {
    const ts = [TS_JPEG_BASELINE, TS_JPEG_LOSSLESS_SV1];
    expectRetrieve(await rad75([E(1)], ts), { status: 'Success', documents: ours(E(1)), errors: [] });
    expectRad69({ E: [E(1)] }, ts);
  },
);

scenario(
  'rig_2018-5423a',
  'two Imaging Document Sources, one consolidated answer',
  'NIST rig_2018-5423a',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    expectRetrieve(await rad75([E(0), F(1)], ts), {
      status: 'Success',
      documents: ours(E(0), F(1)),
      errors: [],
    });
    expectRad69({ E: [E(0)], F: [F(1)] }, ts);
  },
);

scenario(
  'rig-mixed-syntaxes',
  'one study in four transfer syntaxes',
  'NIST rig_2018-5422b; RAD TF-3 4.69.4.1.2',
  async () => {
    const docs = studyOf(seed, 'A', 3);
    expectRetrieve(await rad75(docs, ALL_TS), { status: 'Success', documents: ours(...docs), errors: [] });
    expectRad69({ E: docs }, ALL_TS);
  },
);

scenario(
  'rig_2018-5424a',
  'a transfer syntax the source lacks',
  'NIST rig_2018-5424a; RAD TF-3 4.75',
  async () => {
    const ts = [TS_JPEG_BASELINE];
    expectRetrieve(await rad75([E(0)], ts), {
      status: 'Failure',
      documents: [],
      errors: [at('XDSRepositoryError')],
      errorContext: naming(E(0).documentUniqueId),
    });
    expectRad69({ E: [E(0)] }, ts);
  },
);

scenario('rig_2018-5424b', 'unknown DICOM UIDs', 'NIST rig_2018-5424b; RAD TF-3 4.75', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  const unknown = unknownInstance(E(0));
  expectRetrieve(await rad75([unknown], ts), {
    status: 'Failure',
    documents: [],
    errors: [at('XDSDocumentUniqueIdError')],
    errorContext: naming(unknown.documentUniqueId),
  });
  expectRad69({ E: [unknown] }, ts);
});

scenario(
  'rig_2018-5424c',
  'unknown Imaging Document Source',
  'NIST rig_2018-5424c; RAD TF-3 4.75',
  async () => {
    const doc = { ...E(0), repositoryUniqueId: `${OIDS.A}.13.999` };
    expectRetrieve(await rad75([doc], [TS_EXPLICIT_VR_LE]), {
      status: 'Failure',
      documents: [],
      errors: [at('XDSUnknownRepositoryId')],
      errorContext: naming(doc.documentUniqueId),
    });
    expectRad69({}, []);
  },
);

scenario('rig_2018-5425a', 'PartialSuccess, one Imaging Document Source', 'NIST rig_2018-5425a', async () => {
  const ts = [TS_EXPLICIT_VR_LE];
  const unknown = unknownInstance(E(2, 1, 1));
  expectRetrieve(await rad75([E(0), unknown], ts), {
    status: 'PartialSuccess',
    documents: ours(E(0)),
    errors: [at('XDSDocumentUniqueIdError')],
    errorContext: naming(unknown.documentUniqueId),
  });
  expectRad69({ E: [E(0), unknown] }, ts);
});

scenario(
  'rig_2018-5425b',
  'PartialSuccess across two Imaging Document Sources',
  'NIST rig_2018-5425b',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const unknown = unknownInstance(F(0));
    expectRetrieve(await rad75([E(0), unknown], ts), {
      status: 'PartialSuccess',
      documents: ours(E(0)),
      errors: [at('XDSDocumentUniqueIdError')],
      errorContext: naming(unknown.documentUniqueId),
    });
    expectRad69({ E: [E(0)], F: [unknown] }, ts);
  },
);

scenario(
  'rig-ids-down',
  'one Imaging Document Source down',
  'RAD TF-3 4.75 (RAD75-003, RAD75-004)',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const g = { ...E(0, 0, 0), repositoryUniqueId: IDS_G, documentUniqueId: `${OIDS.A}.23.1` };
    expectRetrieve(await rad75([E(0), g], ts), {
      status: 'PartialSuccess',
      documents: ours(E(0)),
      errors: [at('XDSRepositoryError')],
      errorContext: naming(g.documentUniqueId),
    });
    expectRad69({ E: [E(0)] }, ts);
  },
);

scenario(
  'rig-missing-and-foreign-home',
  'DocumentRequests without HomeCommunityId, and of another community',
  'RAD TF-3 4.75 (RAD75-001, RAD75-004); ITI TF-2 3.39.1',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    const missing = { ...E(2, 0, 0), homeCommunityId: undefined };
    const foreign = { ...E(2, 0, 1), homeCommunityId: HOME.B };
    const a = await rad75([E(0), missing, foreign], ts);
    expectRetrieve(a, {
      status: 'PartialSuccess',
      documents: ours(E(0)),
      errors: [at('XDSMissingHomeCommunityId'), at('XDSUnknownCommunity')],
    });
    const ctx = (code: string) => a.errors.find((e) => e.errorCode === code)?.codeContext;
    expect(ctx('XDSMissingHomeCommunityId')).toContain(missing.documentUniqueId);
    expect(ctx('XDSUnknownCommunity')).toContain(HOME.B);
    expectRad69({ E: [E(0)] }, ts);
  },
);

scenario(
  'rig-empty-uids',
  'empty Study and Series Instance UIDs',
  'NIST ids_2018-4811 case-05…07; RAD TF-3 4.75',
  async () => {
    expectRetrieve(
      await rad75([{ ...E(0), studyInstanceUid: '', seriesInstanceUid: '' }], [TS_EXPLICIT_VR_LE]),
      {
        status: 'Failure',
        documents: [],
        errors: [at('XDSRepositoryError'), at('XDSRepositoryError')],
      },
    );
    expectRad69({}, []);
  },
);

scenario(
  'rig-empty-transfer-syntaxes',
  'empty transfer syntax list',
  'NIST ids_2018-4811 case-08; RAD TF-3 4.75',
  async () => {
    expectRetrieve(await rad75([E(0)], []), {
      status: 'Failure',
      documents: [],
      errors: [at('XDSRepositoryError')],
    });
    expectRad69({}, []);
  },
);

scenario(
  'rig-plain-soap',
  'RAD-75 as a plain SOAP message (not MTOM)',
  'ITI TF-2 3.43.5, Appendix V; RAD TF-3 4.75',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE];
    expectRetrieve(await rad75([E(0)], ts, { plain: true }), {
      status: 'Success',
      documents: ours(E(0)),
      errors: [],
    });
    expectRad69({ E: [E(0)] }, ts);
  },
);

scenario(
  'rig-async-rad75',
  'RAD-75 served asynchronously (ReplyTo)',
  'RAD TF-1 29.1.1; Gazelle RAD75-007',
  async () => {
    const ts = [TS_EXPLICIT_VR_LE, TS_JPEG_LOSSLESS_SV1];
    const docs = [E(0), E(1), F(2)];
    const req = imagingRequest(docs, ts);
    const a = await asyncImagingRetrieve(
      `${rig.url}/rad75`,
      Action.RAD75,
      Action.RAD75Response,
      req,
      receiver,
    );
    expectRetrieve(a, { status: 'Success', documents: ours(...docs), errors: [] });
    expectRad69({ E: [E(0), E(1)], F: [F(2)] }, ts);
  },
);
