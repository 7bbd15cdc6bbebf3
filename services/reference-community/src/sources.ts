/**
 * The reference community's document sources, answering from the seeded files:
 *  - a Document Repository (ITI-43) holding the KOS manifests and the consent documents, whose
 *    bytes match the registry's hash and size;
 *  - an Imaging Document Source (RAD-69) serving the DICOM instances by Study/Series/SOP Instance
 *    UID, in the transfer syntax they are stored in (no transcoding: XDSRepositoryError when none
 *    of the requested syntaxes is available; XDSDocumentUniqueIdError for unknown instances).
 * Each error is about one requested document and carries its DocumentUniqueId in location
 * (ITI TF-2 3.43.5, RAD TF-3 4.69.5).
 * Both run on the shared engine as transactions without sub-requests.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import {
  Action,
  consolidatedStatus,
  decodeRetrieveDocumentSetRequest,
  decodeRetrieveImagingDocumentSetRequest,
  encodeRetrieveResult,
  ErrorCode,
  imagingDocuments,
  imagingSourceAuditEvents,
  registryError,
  retrieveAuditEvents,
  validateImagingRequest,
  type DocumentRequest,
  type ImagingRequest,
  type OutDoc,
  type RegistryError,
  type RetrieveResult,
  type Target,
  type Transaction,
} from '@xcai/shared';
import type { SeedManifest } from './seed/types';

/** Faults the tests inject, by document (SOP Instance) UID. */
export interface Faults {
  /** Serve these documents with one byte changed. */
  corrupt?: string[];
  /** Cut the response off in the middle of these documents. */
  truncate?: string[];
}

interface StoredFile {
  path: string;
  mimeType: string;
  transferSyntaxUid?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
}

const SELF: Target = {
  kind: 'local',
  location: 'self',
  label: 'self',
  endpoint: { url: '', timeoutMs: 0, maxConcurrent: 1, maxResponseBytes: 0 },
};

export class FileIndex {
  readonly kos = new Map<string, StoredFile>();
  readonly instances = new Map<string, StoredFile>();
  readonly repositoryIds = new Set<string>();
  readonly idsIds = new Set<string>();

  constructor(manifests: { dir: string; manifest: SeedManifest }[]) {
    for (const { dir, manifest: m } of manifests) {
      this.repositoryIds.add(m.repositoryUniqueId);
      this.idsIds.add(m.idsRepositoryUniqueId);
      for (const d of [...m.documentEntries, ...(m.consents?.documentEntries ?? [])])
        this.kos.set(`${d.repositoryUniqueId}|${d.uniqueId}`, {
          path: join(dir, d.path),
          mimeType: d.mimeType,
        });
      for (const p of m.patients) {
        for (const s of p.studies) {
          for (const r of s.series) {
            for (const i of r.instances) {
              this.instances.set(`${m.idsRepositoryUniqueId}|${i.sopInstanceUid}`, {
                path: join(dir, i.path),
                mimeType: 'application/dicom',
                transferSyntaxUid: i.transferSyntaxUid,
                studyInstanceUid: s.studyInstanceUid,
                seriesInstanceUid: r.seriesInstanceUid,
              });
            }
          }
        }
      }
    }
  }
}

function result(
  found: { doc: DocumentRequest; file: StoredFile; home?: string }[],
  errors: RegistryError[],
  faults: Faults,
): RetrieveResult {
  let n = 0;
  const docs: OutDoc[] = found.map(({ doc, file, home }) => ({
    meta: {
      homeCommunityId: home,
      repositoryUniqueId: doc.repositoryUniqueId,
      documentUniqueId: doc.documentUniqueId,
      mimeType: file.mimeType,
    },
    contentId: `part${++n}@reference`,
    target: SELF,
    requested: doc,
  }));
  const report: RetrieveResult['report'] = { delivered: [], failed: [] };
  async function* parts() {
    for (let i = 0; i < docs.length; i++) {
      const d = docs[i];
      yield {
        contentId: d.contentId,
        contentType: d.meta.mimeType,
        body: withFaults(createReadStream(found[i].file.path), d.meta.documentUniqueId, faults),
      };
      report.delivered.push(d);
    }
  }
  return {
    status: consolidatedStatus(errors, docs.length > 0),
    errors,
    documents: docs,
    parts: parts(),
    report,
    subRequests: [],
  };
}

function withFaults(body: Readable, uid: string, faults: Faults): Readable {
  if (faults.corrupt?.includes(uid)) {
    let first = true;
    return body.pipe(
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          if (first && chunk.length > 200) {
            first = false;
            const c = Buffer.from(chunk);
            c[200] ^= 0xff;
            cb(null, c);
          } else cb(null, chunk);
        },
      }),
    );
  }
  if (faults.truncate?.includes(uid)) {
    let sent = 0;
    return body.pipe(
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          sent += chunk.length;
          if (sent > 1024) cb(new Error('injected fault: connection lost'));
          else cb(null, chunk);
        },
      }),
    );
  }
  return body;
}

/** ITI-43 Retrieve Document Set at the reference Document Repository. */
export function documentRepository(
  manifests: { dir: string; manifest: SeedManifest }[],
  faults: Faults = {},
  index = new FileIndex(manifests),
): Transaction<DocumentRequest[], never, RetrieveResult> {
  return {
    name: 'ITI-43',
    requestAction: Action.ITI43,
    responseAction: Action.ITI43Response,
    decode: (ctx) => decodeRetrieveDocumentSetRequest(ctx.envelope.payload),
    validate: () => [],
    plan: () => ({ calls: [], errors: [] }),
    async merge(docs) {
      const errors: RegistryError[] = [];
      const found: { doc: DocumentRequest; file: StoredFile; home?: string }[] = [];
      for (const d of docs) {
        const file = index.kos.get(`${d.repositoryUniqueId}|${d.documentUniqueId}`);
        if (!index.repositoryIds.has(d.repositoryUniqueId)) {
          errors.push(
            registryError(
              ErrorCode.UnknownRepositoryId,
              `document ${d.documentUniqueId}: repository ${d.repositoryUniqueId} is not this repository`,
              d.documentUniqueId,
            ),
          );
        } else if (!file) {
          errors.push(
            registryError(
              ErrorCode.DocumentUniqueIdError,
              `document ${d.documentUniqueId} is not in this repository`,
              d.documentUniqueId,
            ),
          );
        } else found.push({ doc: d, file, home: d.homeCommunityId });
      }
      return result(found, errors, faults);
    },
    encode: (res) => encodeRetrieveResult(res),
    audit: (docs, res, ctx, delivery) =>
      retrieveAuditEvents({
        served: 'ITI-43',
        requested: docs,
        res,
        ctx,
        delivery,
        subTransaction: () => 'ITI-43',
        imaging: false,
      }),
  };
}

/** RAD-69 Retrieve Imaging Document Set at the reference Imaging Document Source. */
export function imagingDocumentSource(
  manifests: { dir: string; manifest: SeedManifest }[],
  faults: Faults = {},
): Transaction<ImagingRequest, never, RetrieveResult> {
  const index = new FileIndex(manifests);
  return {
    name: 'RAD-69',
    requestAction: Action.RAD69,
    responseAction: Action.RAD69Response,
    decode: (ctx) => decodeRetrieveImagingDocumentSetRequest(ctx.envelope.payload),
    validate: (req) => validateImagingRequest(req),
    plan: () => ({ calls: [], errors: [] }),
    async merge(req, _o, invalid) {
      if (invalid.length) return result([], invalid, faults);
      const errors: RegistryError[] = [];
      const found: { doc: DocumentRequest; file: StoredFile; home?: string }[] = [];
      for (const d of imagingDocuments(req)) {
        const file = index.instances.get(`${d.repositoryUniqueId}|${d.documentUniqueId}`);
        if (!index.idsIds.has(d.repositoryUniqueId)) {
          errors.push(
            registryError(
              ErrorCode.UnknownRepositoryId,
              `SOP Instance ${d.documentUniqueId}: repository ${d.repositoryUniqueId} is not this Imaging Document Source`,
              d.documentUniqueId,
            ),
          );
        } else if (
          !file ||
          file.studyInstanceUid !== d.studyInstanceUid ||
          file.seriesInstanceUid !== d.seriesInstanceUid
        ) {
          errors.push(
            registryError(
              ErrorCode.DocumentUniqueIdError,
              `SOP Instance ${d.documentUniqueId} is not in series ${d.seriesInstanceUid} of study ${d.studyInstanceUid}`,
              d.documentUniqueId,
            ),
          );
        } else if (!req.transferSyntaxUids.includes(file.transferSyntaxUid ?? '')) {
          errors.push(
            registryError(
              ErrorCode.RepositoryError,
              `SOP Instance ${d.documentUniqueId} is stored as ${file.transferSyntaxUid}, none of the requested transfer syntaxes (no transcoding)`,
              d.documentUniqueId,
            ),
          );
        } else found.push({ doc: d, file, home: d.homeCommunityId });
      }
      return result(found, errors, faults);
    },
    encode: (res) => encodeRetrieveResult(res),
    audit: imagingSourceAuditEvents,
  };
}
