import type { Readable } from 'node:stream';
import { ChunkSource, type SourceFailureKind } from './chunk-source';
import { MtomError } from './errors';
import { parseMediaType } from './media-type';
import { parseMultipart, type MultipartReader } from './multipart';
import type { AttachmentStream, IncomingSoapMessage, MimePart, MultipartLimits } from './types';
import { contentIdKey } from './xop';

const IDENTITY_ENCODINGS = new Set(['binary', '8bit', '7bit']);

const NO_ATTACHMENTS: AttachmentStream = {
  next: () => Promise.resolve(null),
  discard: () => Promise.resolve(),
};

/**
 * Reads a SOAP 1.2 request or response body.
 *
 * - `application/soap+xml`: the whole envelope (at most `maxRootBytes`, else 'too-large').
 * - `multipart/related` (MTOM: `type="application/xop+xml"`, also accepted without `type` or with
 *   `type="application/soap+xml"`): the root part is the first part. If `start` names another part,
 *   the message is rejected ('root-not-first'): parts are streamed, never buffered, so a root after
 *   the attachments could not be honoured without holding those attachments in memory. The root's
 *   type must be application/xop+xml (or application/soap+xml), in binary/8bit/7bit encoding; it is
 *   read whole (at most `maxRootBytes`). The remaining parts come from `attachments` one by one.
 * - anything else, including `text/xml` (SOAP 1.1): 'unsupported-media-type'.
 */
export async function readSoapMessage(
  source: Readable,
  contentType: string | undefined,
  limits: MultipartLimits,
): Promise<IncomingSoapMessage> {
  if (contentType === undefined || contentType.trim() === '') {
    throw new MtomError('unsupported-media-type', 'no Content-Type: expected application/soap+xml or MTOM');
  }
  const mt = parseMediaType(contentType);
  const type = mt?.type;
  if (type === 'application/soap+xml') {
    return { envelope: await readWhole(source, limits), isMtom: false, attachments: NO_ATTACHMENTS };
  }
  if (type === 'text/xml') {
    throw new MtomError(
      'unsupported-media-type',
      'Content-Type text/xml is SOAP 1.1; this service speaks SOAP 1.2 (application/soap+xml or MTOM)',
    );
  }
  if (!mt || type !== 'multipart/related') {
    throw new MtomError(
      'unsupported-media-type',
      `unsupported Content-Type ${JSON.stringify(type ?? contentType)}: expected application/soap+xml or multipart/related (MTOM)`,
    );
  }
  const partsType = mt.params.type?.toLowerCase();
  if (
    partsType !== undefined &&
    partsType !== 'application/xop+xml' &&
    partsType !== 'application/soap+xml'
  ) {
    throw new MtomError(
      'unsupported-media-type',
      `multipart/related with type=${JSON.stringify(partsType)}: expected type="application/xop+xml" (MTOM, SOAP 1.2)`,
    );
  }
  const reader = parseMultipart(source, contentType, limits);
  let root: MimePart | undefined;
  try {
    const first = await reader.next();
    if (first.done) throw new MtomError('missing-root', 'MTOM message has no parts (no SOAP envelope)');
    root = first.value;
    const start = mt.params.start;
    if (start !== undefined && start.trim() !== '') {
      const want = contentIdKey(start);
      const got = root.headers.contentId;
      if (got === undefined || contentIdKey(got) !== want) {
        throw new MtomError(
          'root-not-first',
          `MTOM start=${JSON.stringify(start)} does not name the first part (Content-ID ${JSON.stringify(got ?? null)}); ` +
            'the root must be the first part',
        );
      }
    }
    checkRoot(root);
    const envelope = await readBody(root.body, limits.maxRootBytes);
    return { envelope, isMtom: true, attachments: new Attachments(reader) };
  } catch (e) {
    await reader.return();
    root?.body.destroy();
    throw e;
  }
}

function checkRoot(root: MimePart): void {
  const ct = root.headers.contentType;
  const rt = ct === undefined ? undefined : parseMediaType(ct)?.type;
  if (rt !== 'application/xop+xml' && rt !== 'application/soap+xml') {
    throw new MtomError(
      'bad-root',
      `MTOM root part has Content-Type ${JSON.stringify(ct ?? null)}: expected application/xop+xml`,
    );
  }
  checkEncoding(root, 'root part');
}

function checkEncoding(part: MimePart, what: string): void {
  const cte = part.headers.contentTransferEncoding?.toLowerCase();
  if (cte !== undefined && !IDENTITY_ENCODINGS.has(cte)) {
    throw new MtomError(
      'unsupported-encoding',
      `MTOM ${what} has Content-Transfer-Encoding ${JSON.stringify(cte)}: expected binary`,
    );
  }
}

class Attachments implements AttachmentStream {
  constructor(private readonly reader: MultipartReader) {}

  async next(): Promise<MimePart | null> {
    const r = await this.reader.next();
    if (r.done) return null;
    try {
      checkEncoding(r.value, `part ${JSON.stringify(r.value.headers.contentId ?? null)}`);
    } catch (e) {
      await this.reader.return();
      r.value.body.destroy();
      throw e;
    }
    return r.value;
  }

  discard(): Promise<void> {
    return this.reader.discard();
  }
}

/** Collects a part body, failing with 'too-large' past `max` bytes. */
function readBody(body: Readable, max: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const done = (err: Error | null): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', done);
      body.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, n));
    };
    const onData = (c: Buffer): void => {
      n += c.length;
      if (n > max) {
        body.destroy();
        done(new MtomError('too-large', `SOAP envelope exceeds ${max} bytes`));
        return;
      }
      chunks.push(c);
    };
    const onEnd = (): void => done(null);
    const onClose = (): void => {
      if (!body.readableEnded) done(new MtomError('truncated', 'SOAP envelope part ended early'));
    };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', done);
    body.on('close', onClose);
  });
}

/** A whole plain SOAP body, at most `maxRootBytes`. */
async function readWhole(source: Readable, limits: MultipartLimits): Promise<Buffer> {
  const src = new ChunkSource(source, {
    idleTimeoutMs: limits.idleTimeoutMs,
    fail: (kind: SourceFailureKind, message: string, cause?: unknown) =>
      new MtomError(kind, `SOAP body ${message}`, { cause }),
  });
  const chunks: Buffer[] = [];
  try {
    for (;;) {
      const c = await src.pull();
      if (c === null) return Buffer.concat(chunks, src.bytes);
      if (src.bytes > limits.maxRootBytes) {
        throw new MtomError('too-large', `SOAP envelope exceeds ${limits.maxRootBytes} bytes`);
      }
      chunks.push(c);
    }
  } finally {
    src.release();
  }
}
