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
  opts: { head?: EnvelopeHeadCheck } = {},
): Promise<IncomingSoapMessage> {
  if (contentType === undefined || contentType.trim() === '') {
    throw new MtomError('unsupported-media-type', 'no Content-Type: expected application/soap+xml or MTOM');
  }
  const mt = parseMediaType(contentType);
  const type = mt?.type;
  if (type === 'application/soap+xml') {
    checkCharset(mt?.params.charset, 'Content-Type');
    const src = new ChunkSource(source, {
      idleTimeoutMs: limits.idleTimeoutMs,
      fail: (kind: SourceFailureKind, message: string, cause?: unknown) =>
        cause instanceof MtomError ? cause : new MtomError(kind, `SOAP body ${message}`, { cause }),
    });
    const envelope = await readEnvelope(src, limits.maxRootBytes, opts.head);
    return { envelope, isMtom: false, attachments: NO_ATTACHMENTS };
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
    const body = new ChunkSource(root.body, {
      // The multipart reader fails a part's body with its own MtomError: passed on as it is.
      fail: (kind: SourceFailureKind, message: string, cause?: unknown) =>
        cause instanceof MtomError ? cause : new MtomError(kind, `SOAP envelope part: ${message}`, { cause }),
    });
    const envelope = await readEnvelope(body, limits.maxRootBytes, opts.head);
    return { envelope, isMtom: true, attachments: new Attachments(reader) };
  } catch (e) {
    await reader.return();
    root?.body.destroy();
    throw e;
  }
}

function checkRoot(root: MimePart): void {
  const ct = root.headers.contentType;
  const mt = ct === undefined ? undefined : parseMediaType(ct);
  const rt = mt?.type;
  if (rt !== 'application/xop+xml' && rt !== 'application/soap+xml') {
    throw new MtomError(
      'bad-root',
      `MTOM root part has Content-Type ${JSON.stringify(ct ?? null)}: expected application/xop+xml`,
    );
  }
  checkCharset(mt?.params.charset, 'MTOM root part Content-Type');
  checkEncoding(root, 'root part');
}

/**
 * The charset a SOAP envelope is declared in must be UTF-8 (or not given). The parser reads UTF-8
 * only (and refuses an XML declaration naming anything else): a Content-Type that says otherwise
 * contradicts the body, and guessing which of the two is right could garble patient names.
 */
function checkCharset(charset: string | undefined, where: string): void {
  if (charset === undefined) return;
  if (!/^utf-?8$/i.test(charset.trim()))
    throw new MtomError(
      'unsupported-media-type',
      `${where} charset=${JSON.stringify(charset.slice(0, 40))}: SOAP messages here are UTF-8 (charset=UTF-8)`,
    );
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

/**
 * Checks the head of an envelope before the rest is read (e.g. who sent an answer): `check` gets
 * the envelope bytes read so far — all of them when `complete` — and answers 'more' to be called
 * again with more, or 'pass'; it throws to refuse, and reading stops there. At most `maxBytes` of
 * the envelope are read before it passes.
 */
export interface EnvelopeHeadCheck {
  maxBytes: number;
  check(sofar: Buffer, complete: boolean): Promise<'more' | 'pass'> | 'more' | 'pass';
}

/** The whole envelope (at most `max` bytes, else 'too-large'), its head checked first when asked. */
async function readEnvelope(src: ChunkSource, max: number, head?: EnvelopeHeadCheck): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let pending = head;
  try {
    for (;;) {
      const c = await src.pull();
      if (c === null) {
        const all = Buffer.concat(chunks, src.bytes);
        if (pending && (await pending.check(all, true)) !== 'pass')
          throw new MtomError('truncated', 'SOAP envelope ended before its header');
        return all;
      }
      if (src.bytes > max) throw new MtomError('too-large', `SOAP envelope exceeds ${max} bytes`);
      chunks.push(c);
      if (pending) {
        if ((await pending.check(Buffer.concat(chunks, src.bytes), false)) === 'pass') pending = undefined;
        else if (src.bytes >= pending.maxBytes)
          throw new MtomError(
            'too-large',
            `SOAP header not complete within the first ${pending.maxBytes} bytes of the envelope`,
          );
      }
    }
  } finally {
    src.release();
  }
}
