/**
 * The imaging-source bridge in front of a real Orthanc (DICOMweb plugin), in its own network
 * namespace (test/support/orthanc.ts). Seed studies (ISO 2022 IR 87, ISO 2022 IR 159 and ISO_IR 192
 * names, Explicit and Implicit VR) go in with STOW-RS; the bridge publishes them (QIDO-RS → KOS → RAD-68 → the
 * reference repository → ITI-42 → the reference registry); then a consumer in another community runs
 * its whole day through the federation: ITI-18 finds the manifest, ITI-43 returns it (hash/size
 * checked), RAD-69 → IIG → RAD-75 → RIG → RAD-69 → bridge → WADO-RS → Orthanc returns every instance
 * byte-identical.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import {
  Action,
  encodeFindDocumentsRequest,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  NS,
  readDicomHead,
  silentLogger,
  type ImagingRequest,
  type RunningGateway,
} from '@xcai/shared';
import { Readable } from 'node:stream';
import {
  startReferenceCommunity,
  type RunningCommunity,
} from '../../services/reference-community/src/server';
import { readKos, type KosContents } from '../../services/reference-community/src/seed/kos';
import {
  parsePart10,
  TS_EXPLICIT_VR_LE,
  TS_IMPLICIT_VR_LE,
} from '../../services/reference-community/src/seed/dicom';
import { generateCommunitySeed } from '../../services/reference-community/src/seed/generate';
import { communityIds } from '../../services/reference-community/src/seed/specs';
import type { SeedManifest, SeedSpec } from '../../services/reference-community/src/seed/types';
import { startImagingSource, type RunningImagingSource } from '../../services/imaging-source/src/index';
import { retrieveCall, soapCall } from '../support/client';
import { demoSeeds, directory, MemoryAuditSink, startIG, startRG } from '../support/federation';
import { orthancAvailable, startOrthanc, type RunningOrthanc } from '../support/orthanc';
import { startFaultyArchive, type FaultyArchive } from '../support/faulty-archive';

jest.setTimeout(120_000);

const HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.104';
const IDS = '1.3.6.1.4.1.21367.13.70.104.3';
const AFFINITY = '1.3.6.1.4.1.21367.13.20.1000';
const TS_EXPLICIT = '1.2.840.10008.1.2.1';
const TS_IMPLICIT = '1.2.840.10008.1.2';
const PATIENT_IR87 = `JP1001^^^&${AFFINITY}&ISO`;
const PATIENT_IR192 = `JP1002^^^&${AFFINITY}&ISO`;
const PATIENT_IR159 = `JP1004^^^&${AFFINITY}&ISO`;

/**
 * A study whose patient name needs JIS X 0212 (鷗 is not in JIS X 0208): `\ISO 2022 IR 87\ISO 2022 IR 159`,
 * one series in Explicit and one in Implicit VR.
 */
const IR159_SPEC: SeedSpec = {
  ...communityIds('E', '1.3.6.1.4.1.21367.13.70.105', 'Tsubaki Clinic'),
  patients: [
    {
      id: PATIENT_IR159,
      name: { alphabetic: 'Mori^Ougai', ideographic: '森^鷗外', phonetic: 'もり^おうがい' },
      characterSet: 'ISO 2022 IR 159',
      birthDate: '19620117',
      sex: 'M',
      studies: [
        {
          description: '頭部CT 鷗外記念',
          modality: 'CT',
          date: '20250402',
          time: '101000',
          series: 2,
          instancesPerSeries: 2,
          instanceSize: 64 * 1024,
          transferSyntaxes: [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE],
        },
      ],
    },
  ],
};

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

let orthanc: RunningOrthanc;
let ref: RunningCommunity;
let bridge: RunningImagingSource;
let audit: MemoryAuditSink;
let seed: SeedManifest;
let seedDir: string;
let ir159: SeedManifest;
const work = mkdtempSync(join(tmpdir(), 'xcai-bridge-test-'));
/** Seed instance files by SOP Instance UID. */
const files = new Map<string, { path: string; sha1: string; ts: string }>();

function bridgeDirectory(archiveUrl: string, extra: Record<string, unknown> = {}) {
  return directory({
    homeCommunityId: HOME,
    name: 'Orthanc community',
    deadlineMs: 20_000,
    local: {
      archive: {
        url: archiveUrl,
        repositoryUniqueId: IDS,
        auth: { basicFile: orthanc.basicFile },
        anySyntax: true,
        maxConcurrent: 4,
        timeoutMs: 5_000,
        ...extra,
      },
      publish: {
        repository: { url: ref.provideUrl },
        intervalMs: 0,
        stateFile: join(work, `watermark-${Math.random()}.json`),
        assigningAuthority: AFFINITY,
        sourceId: '1.3.6.1.4.1.21367.13.70.104.9',
        languageCode: 'ja-JP',
      },
    },
  });
}

async function startBridge(archiveUrl: string, extra: Record<string, unknown> = {}) {
  const sink = new MemoryAuditSink();
  const b = await startImagingSource({
    settings: {
      directoryFile: '(inline)',
      host: '127.0.0.1',
      port: 0,
      mgmtPort: 0,
      audit: { transport: 'none' },
      maxRequestBytes: 4 << 20,
    },
    directory: bridgeDirectory(archiveUrl, extra),
    audit: sink,
    log: silentLogger,
  });
  return { b, sink };
}

beforeAll(async () => {
  if (!orthancAvailable())
    throw new Error(
      'Orthanc with its DICOMweb plugin (apt: orthanc orthanc-dicomweb) and unshare are required',
    );
  seedDir = (await demoSeeds()).C;
  seed = JSON.parse(readFileSync(join(seedDir, 'manifest.json'), 'utf8')) as SeedManifest;
  const ir159Dir = join(work, 'seed-ir159');
  ir159 = await generateCommunitySeed(IR159_SPEC, ir159Dir);
  for (const [m, dir] of [
    [seed, seedDir],
    [ir159, ir159Dir],
  ] as const)
    for (const p of m.patients)
      for (const s of p.studies)
        for (const r of s.series)
          for (const i of r.instances)
            files.set(i.sopInstanceUid, { path: join(dir, i.path), sha1: i.sha1, ts: i.transferSyntaxUid });
  orthanc = await startOrthanc();
  expect(await orthanc.stow([...files.values()].map((f) => f.path))).toBe(files.size);
  ref = await startReferenceCommunity({ seedDirs: [], homeCommunityId: HOME, log: silentLogger });
  ({ b: bridge, sink: audit } = await startBridge(orthanc.dicomWeb));
});

afterAll(async () => {
  await bridge?.close();
  await ref?.close();
  await orthanc?.stop();
});

async function findManifests(url: string, patient: string) {
  const ans = await soapCall(url, Action.ITI18, encodeFindDocumentsRequest(patient));
  const list = ans.envelope.payload.child(NS.rim, 'RegistryObjectList');
  return (list?.childrenNamed(NS.rim, 'ExtrinsicObject') ?? []).map((e) => {
    const slot = (n: string) =>
      e
        .childrenNamed(NS.rim, 'Slot')
        .find((s) => s.attr('name') === n)
        ?.child(NS.rim, 'ValueList')
        ?.child(NS.rim, 'Value')
        ?.trimmedText();
    const uid = e
      .childrenNamed(NS.rim, 'ExternalIdentifier')
      .find((x) => x.attr('identificationScheme') === 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab')
      ?.attr('value');
    return {
      uniqueId: uid ?? '',
      hash: slot('hash'),
      size: Number(slot('size')),
      repositoryUniqueId: slot('repositoryUniqueId') ?? '',
      home: e.attr('home'),
    };
  });
}

/** The patient's manifest from the community's own registry and repository (ITI-18, ITI-43). */
async function manifestOf(patient: string) {
  const [entry] = await findManifests(ref.registryUrl, patient);
  const got = await retrieveCall(
    ref.repositoryUrl,
    Action.ITI43,
    encodeRetrieveDocumentSetRequest([
      { repositoryUniqueId: entry.repositoryUniqueId, documentUniqueId: entry.uniqueId },
    ]),
  );
  return { entry, bytes: got.documents[0].bytes };
}

function kosRequest(kos: KosContents, ts: string[], home?: string, extra: string[] = []): ImagingRequest {
  return {
    studies: [
      {
        studyInstanceUid: kos.studyInstanceUid,
        series: kos.series.map((s, i) => ({
          seriesInstanceUid: s.seriesInstanceUid,
          documents: [...s.instances.map((x) => x.sopInstanceUid), ...(i === 0 ? extra : [])].map(
            (documentUniqueId) => ({
              homeCommunityId: home,
              repositoryUniqueId: s.retrieveLocationUid ?? '',
              documentUniqueId,
            }),
          ),
        })),
      },
    ],
    transferSyntaxUids: ts,
  };
}

async function transferSyntaxOf(b: Buffer): Promise<string> {
  const { head, stream } = await readDicomHead(Readable.from([b]));
  stream.destroy();
  return head.transferSyntaxUid;
}

describe('publishing (QIDO-RS → KOS → RAD-68 → ITI-42)', () => {
  test('every study gets one manifest; a second run registers nothing', async () => {
    const first = await bridge.publisher!.trigger();
    expect(first).toEqual({ published: 3, replaced: 0, unchanged: 0, failed: [] });
    const again = await bridge.publisher!.trigger();
    expect(again).toEqual({ published: 0, replaced: 0, unchanged: 3, failed: [] });
    expect(await findManifests(ref.registryUrl, PATIENT_IR87)).toHaveLength(1);
    const submitted = audit.events.filter((e) => e.kind === 'transaction' && e.transaction === 'RAD-68');
    expect(submitted).toHaveLength(3);
    expect(
      submitted.every((e) => e.kind === 'transaction' && e.outcome === 0 && e.side === 'requester'),
    ).toBe(true);
  });

  test('the manifest is found (ITI-18), returned with its registered hash/size (ITI-43), and lists every instance', async () => {
    for (const p of [...seed.patients, ...ir159.patients]) {
      const { entry, bytes: kosBytes } = await manifestOf(p.id);
      expect(entry.repositoryUniqueId).toBe(`${HOME.slice(8)}.2`);
      expect(sha1(kosBytes)).toBe(entry.hash);
      expect(kosBytes.length).toBe(entry.size);
      const kos = readKos(kosBytes);
      const study = p.studies[0];
      expect(kos.studyInstanceUid).toBe(study.studyInstanceUid);
      expect(kos.series.every((s) => s.retrieveLocationUid === IDS)).toBe(true);
      expect(kos.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid)).sort()).toEqual(
        study.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid)).sort(),
      );
      expect(kos.patientId).toBe('JP' + p.id.slice(2, 6));
    }
  });
});

describe('RAD-69 through the bridge (WADO-RS from Orthanc)', () => {
  let kos: KosContents;
  beforeAll(async () => {
    kos = readKos((await manifestOf(PATIENT_IR192)).bytes);
  });

  test('every instance comes back byte-identical in its stored syntax (Explicit and Implicit VR)', async () => {
    const ans = await retrieveCall(
      `${bridge.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(kosRequest(kos, [TS_EXPLICIT, TS_IMPLICIT])),
    );
    expect(ans.registryStatus).toBe('Success');
    const want = kos.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid));
    expect(ans.documents.map((d) => d.documentUniqueId).sort()).toEqual([...want].sort());
    const stored = new Set(want.map((u) => files.get(u)!.ts));
    expect(stored.size).toBe(2); // both syntaxes are in this study
    for (const d of ans.documents) {
      expect(d.mimeType).toBe('application/dicom');
      expect(sha1(d.bytes)).toBe(files.get(d.documentUniqueId)!.sha1);
    }
    expect(
      audit.events.some((e) => e.kind === 'transaction' && e.transaction === 'RAD-69' && e.outcome === 0),
    ).toBe(true);
  });

  test('ISO 2022 IR 159 (JIS X 0212): the manifest names the patient right, the instances come back byte-identical', async () => {
    const kosBytes = (await manifestOf(PATIENT_IR159)).bytes;
    // The bridge writes its manifests in ISO_IR 192, from the archive's metadata.
    const name = parsePart10(kosBytes).dataset.get(0x00100010)?.value?.toString('utf8');
    expect(name?.replace(/[\0 ]+$/, '')).toBe('Mori^Ougai=森^鷗外=もり^おうがい');
    const ans = await retrieveCall(
      `${bridge.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(kosRequest(readKos(kosBytes), [TS_EXPLICIT, TS_IMPLICIT])),
    );
    expect(ans.registryStatus).toBe('Success');
    expect(ans.documents).toHaveLength(4);
    for (const d of ans.documents) {
      expect(sha1(d.bytes)).toBe(files.get(d.documentUniqueId)!.sha1);
      expect(d.bytes.includes(Buffer.from('1b242844', 'hex'))).toBe(true); // ESC $ ( D: JIS X 0212
    }
  });

  test('a syntax the archive must convert to: transcoded by Orthanc, only then, and recorded in the audit', async () => {
    audit.events.length = 0;
    const ans = await retrieveCall(
      `${bridge.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(kosRequest(kos, [TS_EXPLICIT])),
    );
    expect(ans.registryStatus).toMatch(/Success$/);
    for (const d of ans.documents) {
      expect(await transferSyntaxOf(d.bytes)).toBe(TS_EXPLICIT);
      const f = files.get(d.documentUniqueId)!;
      if (f.ts === TS_EXPLICIT) expect(sha1(d.bytes)).toBe(f.sha1);
      else expect(sha1(d.bytes)).not.toBe(f.sha1);
    }
    const served = audit.events.find((e) => e.kind === 'transaction' && e.transaction === 'RAD-69');
    const implicit = [...files].filter(
      ([u, f]) => f.ts === TS_IMPLICIT && ans.documents.some((d) => d.documentUniqueId === u),
    );
    expect(implicit.length).toBeGreaterThan(0);
    const text =
      served?.kind === 'transaction' ? served.groups.map((g) => g.description ?? '').join(' ') : '';
    for (const [u] of implicit) expect(text).toContain(`${u} ${TS_IMPLICIT} → ${TS_EXPLICIT}`);
  });

  test('an instance the archive lacks is XDSDocumentUniqueIdError; the rest is returned (PartialSuccess)', async () => {
    const ans = await retrieveCall(
      `${bridge.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(
        kosRequest(kos, [TS_EXPLICIT, TS_IMPLICIT], undefined, ['1.2.3.4.5.6.7.8.9']),
      ),
    );
    expect(ans.registryStatus).toMatch(/PartialSuccess$/);
    expect(ans.errors).toEqual([
      expect.objectContaining({ errorCode: 'XDSDocumentUniqueIdError', location: '1.2.3.4.5.6.7.8.9' }),
    ]);
    expect(ans.documents).toHaveLength(kos.series.reduce((n, s) => n + s.instances.length, 0));
  });

  test('a repository that is not the bridge is XDSUnknownRepositoryId', async () => {
    const req = kosRequest(kos, [TS_EXPLICIT]);
    req.studies[0].series[0].documents[0].repositoryUniqueId = '1.2.3.999';
    const ans = await retrieveCall(
      `${bridge.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(req),
    );
    expect(ans.errors.map((e) => e.errorCode)).toEqual(['XDSUnknownRepositoryId']);
  });
});

describe("the consumer's whole day through the federation", () => {
  let rg: RunningGateway;
  let ig: RunningGateway;
  const A = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
  beforeAll(async () => {
    rg = await startRG(
      directory({
        homeCommunityId: HOME,
        name: 'Orthanc community',
        local: {
          registry: { url: ref.registryUrl },
          repositories: [{ repositoryUniqueId: `${HOME.slice(8)}.2`, url: ref.repositoryUrl }],
          imagingDocumentSources: [{ repositoryUniqueId: IDS, url: `${bridge.url}/rad69` }],
        },
        communities: [{ homeCommunityId: A, name: 'A' }],
      }),
    );
    ig = await startIG(
      directory({
        homeCommunityId: A,
        name: 'A',
        local: { repositories: [], imagingDocumentSources: [] },
        communities: [
          {
            homeCommunityId: HOME,
            name: 'Orthanc community',
            endpoints: { iti38: `${rg.url}/iti38`, iti39: `${rg.url}/iti39`, rad75: `${rg.url}/rad75` },
          },
        ],
      }),
    );
  });
  afterAll(async () => {
    await ig?.close();
    await rg?.close();
  });

  test('ITI-18 → ITI-43 → RAD-69 at the initiating gateway: every instance byte-identical, from Orthanc', async () => {
    for (const p of seed.patients) {
      const [entry] = await findManifests(`${ig.url}/iti18`, p.id);
      expect(entry.home).toBe(HOME);
      const got = await retrieveCall(
        `${ig.url}/iti43`,
        Action.ITI43,
        encodeRetrieveDocumentSetRequest([
          {
            homeCommunityId: HOME,
            repositoryUniqueId: entry.repositoryUniqueId,
            documentUniqueId: entry.uniqueId,
          },
        ]),
      );
      expect(got.errors).toEqual([]);
      const kosBytes = got.documents[0].bytes;
      expect(sha1(kosBytes)).toBe(entry.hash);
      const kos = readKos(kosBytes);
      const ans = await retrieveCall(
        `${ig.url}/rad69`,
        Action.RAD69,
        encodeRetrieveImagingDocumentSetRequest(kosRequest(kos, [TS_EXPLICIT, TS_IMPLICIT], HOME)),
      );
      expect(ans.errors).toEqual([]);
      const want = kos.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid));
      expect(ans.documents).toHaveLength(want.length);
      for (const d of ans.documents) {
        expect(d.homeCommunityId).toBe(HOME);
        expect(sha1(d.bytes)).toBe(files.get(d.documentUniqueId)!.sha1);
      }
    }
  });
});

describe('a study that gains an instance', () => {
  test('gets a replacement manifest (RPLC); the old one is deprecated', async () => {
    const study = seed.patients[0].studies[0];
    const src = study.series[0].instances[0];
    const bytes = readFileSync(join(seedDir, src.path));
    const newUid = src.sopInstanceUid.slice(0, -1) + (src.sopInstanceUid.endsWith('9') ? '8' : '9');
    const copy = Buffer.from(bytes.toString('latin1').split(src.sopInstanceUid).join(newUid), 'latin1');
    const file = join(work, 'added.dcm');
    writeFileSync(file, copy);
    expect(await orthanc.stow([file])).toBe(1);
    const before = await findManifests(ref.registryUrl, seed.patients[0].id);
    const run = await bridge.publisher!.trigger();
    expect(run).toMatchObject({ replaced: 1, published: 0, failed: [] });
    const after = await findManifests(ref.registryUrl, seed.patients[0].id);
    expect(after).toHaveLength(1);
    expect(after[0].uniqueId).not.toBe(before[0].uniqueId);
    const assoc = await soapCall(
      ref.registryUrl,
      Action.ITI18,
      `<query:AdhocQueryRequest xmlns:query="${NS.query}" xmlns:rim="${NS.rim}"><query:ResponseOption returnType="LeafClass"/>` +
        `<rim:AdhocQuery id="urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"><rim:Slot name="$XDSDocumentEntryUniqueId"><rim:ValueList><rim:Value>('${after[0].uniqueId}')</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery></query:AdhocQueryRequest>`,
    );
    const rplc = assoc.envelope.payload
      .child(NS.rim, 'RegistryObjectList')
      ?.childrenNamed(NS.rim, 'Association')
      .filter((a) => a.attr('associationType') === 'urn:ihe:iti:2007:AssociationType:RPLC');
    expect(rplc).toHaveLength(1);
    expect((await bridge.publisher!.trigger()).replaced).toBe(0);
  });
});

describe('bad archive behaviour (a faulty proxy in front of the real Orthanc)', () => {
  let faulty: FaultyArchive;
  let b: RunningImagingSource;
  let kos: KosContents;
  beforeAll(async () => {
    faulty = await startFaultyArchive(orthanc.dicomWeb);
    faulty.mode = 'down';
    ({ b } = await startBridge(faulty.url, { timeoutMs: 1_500, anySyntax: false }));
    kos = readKos((await manifestOf(PATIENT_IR192)).bytes);
  });
  afterAll(async () => {
    await b?.close();
    await faulty?.close();
  });
  const readyz = async () => {
    const r = await request(`${b.mgmt!.url}/readyz`);
    return {
      status: r.statusCode,
      body: (await r.body.json()) as { checks: Record<string, { status: string }> },
    };
  };
  const rad69 = (ts = [TS_EXPLICIT]) =>
    retrieveCall(
      `${b.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(kosRequest(kos, ts)),
    );

  test('an archive that is down at start: the bridge starts, is not ready, and recovers', async () => {
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks.archive.status).toBe('unready');
    faulty.mode = 'ok';
    const up = await readyz();
    expect(up.status).toBe(200);
  });

  test('5xx, a wrong content type, a truncated answer, another SOP Instance, a slow archive: XDSRepositoryError per instance, the rest returned', async () => {
    const sops = kos.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid));
    const cases: [FaultyArchive['mode'], RegExp][] = [
      ['5xx', /HTTP 503/],
      ['content-type', /not multipart\/related/],
      ['truncate', /cut short|truncated/],
      ['other-sop', /SOP Instance UID/],
      ['slow', /in time|deadline|timeout|cut short/i],
    ];
    for (const [mode, why] of cases) {
      faulty.mode = mode;
      faulty.target = sops[1];
      faulty.other = sops[2];
      const ans = await rad69();
      expect([mode, ans.registryStatus]).toEqual([mode, 'PartialSuccess']);
      expect(ans.errors).toEqual([
        expect.objectContaining({ errorCode: 'XDSRepositoryError', location: sops[1] }),
      ]);
      expect(ans.errors[0].codeContext).toMatch(why);
      expect(ans.documents.map((d) => d.documentUniqueId)).not.toContain(sops[1]);
      expect(ans.documents.length).toBe(sops.length - 1);
    }
    faulty.mode = 'ok';
  });

  test('a consumer that hangs up cancels the archive requests under way, and no more are made', async () => {
    // Long archive timeouts and deadline: only the consumer's disconnect can end these requests soon.
    const { b: patient } = await startBridge(faulty.url, {
      timeoutMs: 30_000,
      maxConcurrent: 2,
      anySyntax: false,
    });
    try {
      faulty.mode = 'stall';
      const before = { requests: faulty.requests, cancelled: faulty.cancelled };
      const hangUp = new AbortController();
      const call = soapCall(
        `${patient.url}/rad69`,
        Action.RAD69,
        encodeRetrieveImagingDocumentSetRequest(kosRequest(kos, [TS_EXPLICIT])),
        { signal: hangUp.signal },
      ).then(
        () => 'answered',
        (e: Error) => e.name,
      );
      const until = async (what: string, ok: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!ok()) {
          if (Date.now() > end) throw new Error(`${what} (open ${faulty.open}, requests ${faulty.requests})`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await until('the bridge did not reach the archive', () => faulty.open === 2, 5_000);
      const atHangUp = faulty.requests;
      hangUp.abort();
      expect(await call).toBe('AbortError');
      await until('the archive requests were not cancelled', () => faulty.open === 0, 2_000);
      await new Promise((r) => setTimeout(r, 300));
      const sops = kos.series.reduce((n, s) => n + s.instances.length, 0);
      const made = faulty.requests - before.requests;
      expect(faulty.requests).toBe(atHangUp); // nothing asked of the archive after the hang-up
      expect(made).toBe(2); // one per lane; the lanes' other instances were never asked for
      expect(made).toBeLessThan(sops);
      expect(faulty.cancelled - before.cancelled).toBe(made);
      expect(faulty.open).toBe(0);
    } finally {
      faulty.mode = 'ok';
      await patient.close();
    }
  });
});
