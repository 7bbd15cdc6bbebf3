/**
 * Support for the conformance suite (test/conformance/): the scenario recorder that feeds the
 * "IHE conformance" table of docs/integration-statement.md, the suite's own seed (not the demo's:
 * small studies shaped like the NIST XCA-I test data — one image, several studies, a multi-image
 * study, one study in four transfer syntaxes, a second Imaging Document Source), and the checks every
 * retrieve scenario makes (status, errors and their location, documents and their HomeCommunityId,
 * byte identity, schema validity).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeRetrieveImagingDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  imagingDocuments,
  nestImagingDocuments,
  type DocumentRequest,
  type ImagingDocumentRef,
  type ImagingRequest,
} from '@xcai/shared';
import { asyncRetrieveCall, retrieveAnswer, retrieveCall, type RetrieveAnswerForTest } from './client';
import type { ReplyReceiver } from './async-peer';
import { ROOT } from './federation';
import type { RecordedRequest, Recorder } from './recorder';
import { deIncludeXop, xsdErrors } from './xsd';
import { generateCommunitySeed } from '../../services/reference-community/src/seed/generate';
import {
  TS_EXPLICIT_VR_LE,
  TS_IMPLICIT_VR_LE,
  TS_JPEG_LOSSLESS_SV1,
  TS_JPEG_LS_LOSSLESS,
} from '../../services/reference-community/src/seed/dicom';
import { communityIds, DEMO_AFFINITY_DOMAIN_OID } from '../../services/reference-community/src/seed/specs';
import type {
  ManifestInstance,
  SeedManifest,
  SeedSpec,
} from '../../services/reference-community/src/seed/types';

export { TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE, TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS };
/** JPEG Baseline (Process 1): requested by NIST's failure cases, held by nobody here. */
export const TS_JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

// ---- results ---------------------------------------------------------------------------------------

export interface ScenarioResult {
  id: string;
  title: string;
  /** The NIST test or IHE section the scenario mirrors. */
  mirrors: string;
  result: 'pass' | 'fail';
}

/** Where each suite file writes its results; test/conformance/table.js reads them. */
export const RESULTS_DIR = process.env.XCAI_CONFORMANCE_RESULTS ?? join(ROOT, '.run', 'conformance');

/**
 * Declares the scenarios of one suite (one test file, one actor under test). Each scenario is a jest
 * test; its outcome is written, with the others', to RESULTS_DIR/<file>.json when the file ends.
 */
export function conformanceSuite(file: string, actor: string) {
  const results: ScenarioResult[] = [];
  afterAll(() => {
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(
      join(RESULTS_DIR, `${file}.json`),
      JSON.stringify({ file, actor, scenarios: results }, null, 2),
    );
  });
  return function scenario(
    id: string,
    title: string,
    mirrors: string,
    fn: () => Promise<void>,
    timeoutMs = 30_000,
  ) {
    it(
      `${id} — ${title} (${mirrors})`,
      async () => {
        try {
          await fn();
          results.push({ id, title, mirrors, result: 'pass' });
        } catch (e) {
          results.push({ id, title, mirrors, result: 'fail' });
          throw e;
        }
      },
      timeoutMs,
    );
  };
}

// ---- seed ------------------------------------------------------------------------------------------

/** Community OIDs of the suite: homeCommunityId = urn:oid:<oid>. I is the initiating side. */
export const OIDS = {
  I: '1.3.6.1.4.1.21367.13.70.210',
  A: '1.3.6.1.4.1.21367.13.70.211',
  B: '1.3.6.1.4.1.21367.13.70.212',
  C: '1.3.6.1.4.1.21367.13.70.213',
} as const;
export const HOME = {
  I: `urn:oid:${OIDS.I}`,
  A: `urn:oid:${OIDS.A}`,
  B: `urn:oid:${OIDS.B}`,
  C: `urn:oid:${OIDS.C}`,
} as const;
export const PATIENT = `CF1001^^^&${DEMO_AFFINITY_DOMAIN_OID}&ISO`;

const KiB = 1024;
const patient = (studies: SeedSpec['patients'][number]['studies']) => ({
  id: PATIENT,
  name: { alphabetic: 'Conformance^Patient' },
  birthDate: '19800101',
  sex: 'O' as const,
  studies,
});
const study = (description: string, series: number, perSeries: number, ts: string[]) => ({
  description,
  modality: 'CT',
  date: '20250401',
  series,
  instancesPerSeries: perSeries,
  instanceSize: 24 * KiB,
  transferSyntaxes: ts,
});

/**
 * A: four studies (one image; one image stored as JPEG Lossless; two series of three; four series of
 * two in Explicit VR LE, Implicit VR LE, JPEG Lossless and JPEG-LS). A2: a second Imaging Document
 * Source of community A (NIST's IDS F) with a three-image study. B: two images. C: one JPEG-LS image.
 */
export function conformanceSpecs(): { label: 'A' | 'A2' | 'B' | 'C'; spec: SeedSpec }[] {
  const a = communityIds('A', OIDS.A, 'Conformance Hospital A');
  return [
    {
      label: 'A',
      spec: {
        ...a,
        patients: [
          patient([
            study('single image', 1, 1, [TS_EXPLICIT_VR_LE]),
            study('JPEG Lossless image', 1, 1, [TS_JPEG_LOSSLESS_SV1]),
            study('multi-image', 2, 3, [TS_EXPLICIT_VR_LE, TS_IMPLICIT_VR_LE]),
            study('mixed syntaxes', 4, 2, [
              TS_EXPLICIT_VR_LE,
              TS_IMPLICIT_VR_LE,
              TS_JPEG_LOSSLESS_SV1,
              TS_JPEG_LS_LOSSLESS,
            ]),
          ]),
        ],
      },
    },
    {
      label: 'A2',
      spec: {
        ...a,
        community: 'A2',
        uidRoot: `${OIDS.A}.11`,
        repositoryUniqueId: `${OIDS.A}.12`,
        idsRepositoryUniqueId: `${OIDS.A}.13`,
        sourceId: `${OIDS.A}.14`,
        institution: { name: 'Conformance Imaging Centre A2', oid: `${OIDS.A}.15` },
        patients: [patient([study('second source', 1, 3, [TS_EXPLICIT_VR_LE])])],
      },
    },
    {
      label: 'B',
      spec: {
        ...communityIds('B', OIDS.B, 'Conformance Hospital B'),
        patients: [patient([study('community B', 1, 2, [TS_EXPLICIT_VR_LE])])],
      },
    },
    {
      label: 'C',
      spec: {
        ...communityIds('C', OIDS.C, 'Conformance Hospital C'),
        patients: [patient([study('community C', 1, 1, [TS_JPEG_LS_LOSSLESS])])],
      },
    },
  ];
}

export type SeedLabel = 'A' | 'A2' | 'B' | 'C';

export interface ConformanceSeed {
  dirs: Record<SeedLabel, string>;
  manifests: Record<SeedLabel, SeedManifest>;
}

/** The suite's seed, generated once per machine into the temp directory (never committed). */
export async function conformanceSeed(): Promise<ConformanceSeed> {
  const base = join(tmpdir(), `xcai-conformance-seed-v1-${process.getuid?.() ?? 0}`);
  const labels: SeedLabel[] = ['A', 'A2', 'B', 'C'];
  if (!existsSync(join(base, 'done'))) {
    const work = mkdtempSync(join(tmpdir(), 'xcai-seeding-'));
    for (const { label, spec } of conformanceSpecs()) await generateCommunitySeed(spec, join(work, label));
    mkdirSync(join(work, 'done'));
    try {
      renameSync(work, base);
    } catch {
      rmSync(work, { recursive: true, force: true }); // another worker won the race
    }
  }
  const dirs = Object.fromEntries(labels.map((l) => [l, join(base, l)])) as Record<SeedLabel, string>;
  const manifests = Object.fromEntries(
    labels.map((l) => [l, JSON.parse(readFileSync(join(dirs[l], 'manifest.json'), 'utf8')) as SeedManifest]),
  ) as Record<SeedLabel, SeedManifest>;
  return { dirs, manifests };
}

// ---- requests --------------------------------------------------------------------------------------

/** A seeded document as a DocumentRequest, with where its bytes are. */
export interface StoredDocument extends DocumentRequest {
  file: string;
}

/** One seeded instance as a RAD-69/RAD-75 DocumentRequest, with where its bytes are. */
export interface InstanceRef extends ImagingDocumentRef, StoredDocument {
  instance: ManifestInstance;
}

/** The KOS manifest of study `i` of a seed, as an ITI-43 / ITI-39 DocumentRequest. */
export function manifestOf(seed: ConformanceSeed, label: SeedLabel, i: number): StoredDocument {
  const m = seed.manifests[label];
  const kos = m.patients[0].studies[i].kos;
  return {
    homeCommunityId: m.homeCommunityId,
    repositoryUniqueId: m.repositoryUniqueId,
    documentUniqueId: kos.documentUniqueId,
    file: join(seed.dirs[label], kos.path),
  };
}

/** Instance `k` of series `j` of study `i` of a seed (0-based), as its community would be asked for it. */
export function instanceOf(seed: ConformanceSeed, label: SeedLabel, i: number, j = 0, k = 0): InstanceRef {
  const m = seed.manifests[label];
  const s = m.patients[0].studies[i];
  const series = s.series[j];
  const instance = series.instances[k];
  return {
    studyInstanceUid: s.studyInstanceUid,
    seriesInstanceUid: series.seriesInstanceUid,
    homeCommunityId: m.homeCommunityId,
    repositoryUniqueId: m.idsRepositoryUniqueId,
    documentUniqueId: instance.sopInstanceUid,
    instance,
    file: join(seed.dirs[label], instance.path),
  };
}

/** Every instance of study `i` of a seed. */
export function studyOf(seed: ConformanceSeed, label: SeedLabel, i: number): InstanceRef[] {
  const s = seed.manifests[label].patients[0].studies[i];
  return s.series.flatMap((series, j) => series.instances.map((_x, k) => instanceOf(seed, label, i, j, k)));
}

/** A DocumentRequest for an instance nobody holds, filed under a real study and series. */
export function unknownInstance(like: ImagingDocumentRef, suffix = '999'): ImagingDocumentRef {
  return { ...like, documentUniqueId: `${like.documentUniqueId}.${suffix}` };
}

/** The RAD-69/RAD-75 request for these documents, nested by study and series. */
export function imagingRequest(docs: ImagingDocumentRef[], ts: string[]): ImagingRequest {
  return nestImagingDocuments(docs, ts);
}

/** A client of a RAD-69 or RAD-75 endpoint: the documents and transfer syntaxes in, the answer out. */
export function imagingClient(url: () => string, action: string) {
  return (docs: ImagingDocumentRef[], ts: string[], o: { plain?: boolean } = {}) =>
    retrieveCall(url(), action, encodeRetrieveImagingDocumentSetRequest(imagingRequest(docs, ts)), o);
}

/**
 * The same request sent asynchronously: answered 202, the response POSTed to `receiver` with the
 * response action, read as the synchronous answer would be.
 */
export async function asyncImagingRetrieve(
  url: string,
  action: string,
  responseAction: string,
  req: ImagingRequest,
  receiver: ReplyReceiver,
): Promise<RetrieveAnswerForTest> {
  const body = encodeRetrieveImagingDocumentSetRequest(req);
  const sent = await asyncRetrieveCall(url, action, body, `${receiver.url}/reply`);
  expect(sent.status).toBe(202);
  const msg = await receiver.next(sent.messageId);
  expect(msg.envelope.wsa.action).toBe(responseAction);
  return retrieveAnswer(msg.xml, msg.parts, {
    status: 200,
    contentType: msg.contentType,
    messageId: sent.messageId,
  });
}

// ---- checks ----------------------------------------------------------------------------------------

export interface Expected {
  status: 'Success' | 'PartialSuccess' | 'Failure';
  /** The documents returned, each with the HomeCommunityId it must carry (byte-identical to the seed). */
  documents: { ref: StoredDocument; home: string | undefined }[];
  /** [errorCode, location] of each RegistryError, in any order. */
  errors: [string, string | undefined][];
  /** Words every RegistryError's codeContext must contain (e.g. the community for the IIG). */
  errorContext?: (e: { errorCode: string; location?: string }) => string[];
}

/** Status, errors with their location, documents with their home and bytes, and schema validity. */
export function expectRetrieve(a: RetrieveAnswerForTest, x: Expected): void {
  expect(a.status).toBe(200);
  expect(xsdErrors([deIncludeXop(a.rootXml)])).toBe('');
  expect(a.truncated).toBeUndefined();
  expect(a.registryStatus).toBe(x.status);
  expect(a.errors.map((e) => [e.errorCode, e.location]).sort()).toEqual([...x.errors].sort());
  for (const e of a.errors) for (const w of x.errorContext?.(e) ?? []) expect(e.codeContext).toContain(w);
  const got = new Map(a.documents.map((d) => [d.documentUniqueId, d]));
  expect([...got.keys()].sort()).toEqual(x.documents.map((d) => d.ref.documentUniqueId).sort());
  for (const { ref, home } of x.documents) {
    const d = got.get(ref.documentUniqueId);
    expect([d?.homeCommunityId, d?.repositoryUniqueId, d?.mimeType]).toStrictEqual([
      home,
      ref.repositoryUniqueId,
      'application/dicom',
    ]);
    expect(d?.bytes.equals(readFileSync(ref.file))).toBe(true);
  }
}

/**
 * What a gateway sent on to each next hop: exactly one request with these documents to each one named,
 * nothing to the others.
 */
export function expectSentTo<K extends string>(
  recorders: Record<K, Recorder>,
  sent: Partial<Record<K, ImagingDocumentRef[]>>,
  action: string,
  ts: string[],
): void {
  for (const k of Object.keys(recorders) as K[]) {
    const docs = sent[k];
    expect([k, recorders[k].requests.length]).toEqual([k, docs ? 1 : 0]);
    if (docs) expectSentOn(recorders[k].requests[0], action, imagingRequest(docs, ts));
  }
}

/**
 * A RAD-75 / RAD-69 a gateway sent on (NIST ValidateRad75Request / ValidateRad69Request, "sameReqImgs"):
 * the action, schema validity, and the same studies, series and documents — each with its
 * HomeCommunityId — and the same transfer syntax list as `expected`.
 */
export function expectSentOn(sent: RecordedRequest, action: string, expected: ImagingRequest): void {
  expect(sent.envelope.wsa.action).toBe(action);
  expect(xsdErrors([sent.xml])).toBe('');
  const req = decodeRetrieveImagingDocumentSetRequest(sent.envelope.payload);
  const key = (d: ImagingDocumentRef) =>
    [
      d.studyInstanceUid,
      d.seriesInstanceUid,
      d.homeCommunityId,
      d.repositoryUniqueId,
      d.documentUniqueId,
    ].join('|');
  expect(imagingDocuments(req).map(key).sort()).toEqual(imagingDocuments(expected).map(key).sort());
  expect(req.transferSyntaxUids).toEqual(expected.transferSyntaxUids);
}
