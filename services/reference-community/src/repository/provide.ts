/**
 * ITI-41 Provide and Register Document Set-b, and RAD-68 Provide and Register Imaging Document Set
 * (the same message and actions, RAD TF-3 4.68), served by the reference Document Repository.
 *
 * Each document arrives as an MTOM part; it is written to the repository's store while its SHA-1
 * and size are computed (ITI TF-2 3.41.4.1.3: the repository sets hash, size and
 * repositoryUniqueId, and refuses values a submitter gave that differ), then the metadata is
 * registered with ITI-42 at the community's registry. A document is kept only if the registry
 * accepted the submission: the whole submission succeeds or fails.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import {
  Action,
  base64Stream,
  cidFromHref,
  contentIdKey,
  decodeProvideAndRegisterRequest,
  decodeRegistryResponse,
  dispatch,
  encodeRegisterDocumentSetRequest,
  encodeRegistryResponse,
  ErrorCode,
  registryError,
  receivedSubmissionAudit,
  SubmissionError,
  type Call,
  type Ctx,
  type Endpoint,
  type RegistryError,
  type Status,
  type Submission,
  type Transaction,
} from '@xcai/shared';
import type { Readable } from 'node:stream';

type Content = { kind: 'xop'; href: string } | { kind: 'inline'; base64: string };
type Decoded = { submission?: Submission; contents: Map<string, Content>; invalid?: string };
type Provided = { status: Status; errors: RegistryError[] };
type Registered = { status: Status; errors: RegistryError[] };

export interface ProvideOptions {
  repositoryUniqueId: string;
  /** Where accepted documents are written. */
  storeDir: string;
  /** The community's registry (ITI-42). */
  registry: () => Endpoint;
  /** Called for each document once the registry accepted it. */
  stored(d: { uniqueId: string; path: string; mimeType: string }): void;
}

interface Written {
  entryUUID: string;
  tmp: string;
  sha1: string;
  size: number;
}

export function provideAndRegister(o: ProvideOptions): Transaction<Decoded, never, Provided> {
  return {
    name: 'ITI-41',
    requestAction: Action.ITI41,
    responseAction: Action.ITI41Response,
    readsAttachments: true,
    decode(ctx) {
      try {
        const { submission, documents } = decodeProvideAndRegisterRequest(ctx.envelope.payload);
        return { submission, contents: documents };
      } catch (e) {
        if (e instanceof SubmissionError) return { contents: new Map(), invalid: e.message };
        throw e;
      }
    },
    validate(req) {
      if (req.invalid || !req.submission)
        return [registryError(ErrorCode.RegistryMetadataError, req.invalid ?? 'no metadata')];
      const errors: RegistryError[] = [];
      const entries = new Set(req.submission.documents.map((d) => d.entryUUID));
      for (const d of req.submission.documents)
        if (!req.contents.has(d.entryUUID))
          errors.push(
            registryError(
              ErrorCode.MissingDocument,
              `no Document for DocumentEntry ${d.uniqueId}`,
              d.uniqueId,
            ),
          );
      for (const id of req.contents.keys())
        if (!entries.has(id))
          errors.push(
            registryError(ErrorCode.MissingDocumentMetadata, `Document ${id} has no DocumentEntry`, id),
          );
      return errors;
    },
    plan: () => ({ calls: [], errors: [] }),
    async merge(req, _o, invalid, ctx) {
      if (invalid.length || !req.submission) return { status: 'Failure', errors: invalid };
      const sub = req.submission;
      const written: Written[] = [];
      try {
        const errors = await storeDocuments(req, o.storeDir, ctx, written);
        if (errors.length) return { status: 'Failure', errors };
        for (const w of written) {
          const d = sub.documents.find((x) => x.entryUUID === w.entryUUID);
          if (!d) continue;
          if (d.hash && d.hash !== w.sha1)
            errors.push(
              registryError(
                ErrorCode.NonIdenticalHash,
                `hash of ${d.uniqueId} differs from the document`,
                d.uniqueId,
              ),
            );
          if (d.size !== undefined && d.size !== w.size)
            errors.push(
              registryError(
                ErrorCode.NonIdenticalSize,
                `size of ${d.uniqueId} differs from the document`,
                d.uniqueId,
              ),
            );
          Object.assign(d, { hash: w.sha1, size: w.size, repositoryUniqueId: o.repositoryUniqueId });
        }
        if (errors.length) return { status: 'Failure', errors };
        const [out] = await dispatch([registerCall(sub, o.registry())], ctx);
        const answer: Registered = out.ok ? out.value : { status: 'Failure', errors: out.errors };
        if (answer.status !== 'Failure') {
          for (const w of written) {
            const d = sub.documents.find((x) => x.entryUUID === w.entryUUID);
            if (!d) continue;
            const path = join(o.storeDir, `${d.uniqueId}.${randomUUID()}`);
            await rename(w.tmp, path);
            w.tmp = '';
            o.stored({ uniqueId: d.uniqueId, path, mimeType: d.mimeType });
          }
        }
        return answer;
      } finally {
        for (const w of written) if (w.tmp) await unlink(w.tmp).catch(() => undefined);
      }
    },
    encode: (res) => ({ kind: 'xml', payload: encodeRegistryResponse(res.status, res.errors) }),
    audit: (req, res, ctx, delivery) => [
      // RAD-68 is ITI-41 carrying imaging manifests (KOS): recorded as what it carried.
      receivedSubmissionAudit(
        req.submission?.documents.some((d) => d.mimeType === 'application/dicom') ? 'RAD-68' : 'ITI-41',
        req.submission,
        res,
        ctx,
        delivery,
      ),
    ],
  };
}

/** Writes every document of the request to a temporary file in `dir`, hashing it on the way. */
async function storeDocuments(
  req: Decoded,
  dir: string,
  ctx: Ctx,
  written: Written[],
): Promise<RegistryError[]> {
  const byCid = new Map<string, string>();
  for (const [entryUUID, c] of req.contents) {
    if (c.kind === 'inline') written.push(await writeOne(base64Stream(c.base64), entryUUID, dir));
    else byCid.set(contentIdKey(cidFromHref(c.href)), entryUUID);
  }
  for (;;) {
    const part = await ctx.attachments.next();
    if (!part) break;
    const id = byCid.get(contentIdKey(part.headers.contentId ?? ''));
    if (!id) {
      part.body.destroy();
      continue;
    }
    byCid.delete(contentIdKey(part.headers.contentId ?? ''));
    written.push(await writeOne(part.body, id, dir));
  }
  return [...byCid.values()].map((id) =>
    registryError(ErrorCode.MissingDocument, `the MTOM part of Document ${id} is missing`, id),
  );
}

async function writeOne(body: Readable, entryUUID: string, dir: string): Promise<Written> {
  const tmp = join(dir, `.incoming-${randomUUID()}`);
  const h = createHash('sha1');
  let size = 0;
  const w: Written = { entryUUID, tmp, sha1: '', size: 0 };
  await pipeline(
    body,
    new Transform({
      transform(c: Buffer, _e, cb) {
        h.update(c);
        size += c.length;
        cb(null, c);
      },
    }),
    createWriteStream(tmp, { flags: 'wx' }),
  );
  w.sha1 = h.digest('hex');
  w.size = size;
  return w;
}

function registerCall(sub: Submission, registry: Endpoint): Call<Registered> {
  return {
    target: { kind: 'local', location: 'registry', label: 'registry', endpoint: registry },
    action: Action.ITI42,
    responseAction: Action.ITI42Response,
    body: encodeRegisterDocumentSetRequest(sub),
    mtom: false,
    read: async (res) => decodeRegistryResponse(res.envelope.payload),
    failed: (why) => [registryError(ErrorCode.RegistryError, `the registry did not answer: ${why.message}`)],
  };
}
