import { Readable } from 'node:stream';
import { ChunkSource, type SourceFailureKind } from '../mtom/chunk-source';

export type DicomHeadErrorCode =
  /** No 'DICM' after the 128-byte preamble, or fewer than 132 bytes. */
  | 'not-dicom'
  /** The File Meta Information group is malformed or lacks a required element. */
  | 'bad-meta'
  /** The meta group does not fit in `maxHeadBytes`. */
  | 'too-large-head'
  /** The data ended (or the stream closed) inside the meta group or inside a dataset element. */
  | 'truncated'
  /** No data arrived within `idleTimeoutMs`. */
  | 'timeout';

export class DicomHeadError extends Error {
  override readonly name = 'DicomHeadError';
  constructor(
    readonly code: DicomHeadErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What the head of a DICOM Part 10 object says about it. UIDs have their padding removed. */
export interface DicomHead {
  /** (0002,0002) Media Storage SOP Class UID. */
  mediaStorageSopClassUid: string;
  /** (0002,0003) Media Storage SOP Instance UID. */
  mediaStorageSopInstanceUid: string;
  /** (0002,0010) Transfer Syntax UID. */
  transferSyntaxUid: string;
  /** (0008,0016) SOP Class UID of the dataset, when it was reached. */
  sopClassUid?: string;
  /** (0008,0018) SOP Instance UID of the dataset, when it was reached (see `readDicomHead`). */
  sopInstanceUid?: string;
  /** Bytes examined (preamble, meta group and the dataset elements walked). */
  headBytes: number;
}

export interface DicomHeadOptions {
  /** Most bytes read ahead to find the head (default 64 KiB). */
  maxHeadBytes?: number;
  /** Longest wait for the next chunk, in ms (default: none; the transport bounds it). */
  idleTimeoutMs?: number;
}

export const TS_IMPLICIT_VR_LE = '1.2.840.10008.1.2';
export const TS_EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const TS_DEFLATED_EXPLICIT_VR_LE = '1.2.840.10008.1.2.1.99';
export const TS_EXPLICIT_VR_BE = '1.2.840.10008.1.2.2';
/** Transfer syntaxes whose dataset is not walked (compressed as a whole, or big endian). */
const DATASET_NOT_WALKED = new Set([
  TS_DEFLATED_EXPLICIT_VR_LE,
  TS_EXPLICIT_VR_BE,
  '1.2.840.10008.1.2.4.95', // JPIP Referenced Deflate
]);

/** VRs with a 2-byte reserved field and a 4-byte length in explicit VR encoding (as 16-bit codes). */
const LONG_VRS = new Set(
  ['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV'].map(
    (v) => v.charCodeAt(0) * 0x100 + v.charCodeAt(1),
  ),
);

/** The VR at `at` as a 16-bit code, or -1 unless it is two letters A-Z. */
function vrCode(b: Buffer, at: number): number {
  const c0 = b[at];
  const c1 = b[at + 1];
  return c0 >= 0x41 && c0 <= 0x5a && c1 >= 0x41 && c1 <= 0x5a ? c0 * 0x100 + c1 : -1;
}

const DEFAULT_MAX_HEAD = 64 * 1024;
const PREAMBLE = 128;
const UNDEFINED_LENGTH = 0xffffffff;
const TAG_SOP_CLASS = 0x00080016;
const TAG_SOP_INSTANCE = 0x00080018;

/**
 * Reads the head of a DICOM Part 10 stream: preamble + 'DICM', the File Meta Information group
 * (explicit VR little endian; bounded by (0002,0000) when present, else read while the group is
 * 0002), and, unless the transfer syntax is deflated or big endian, the dataset up to
 * (0008,0018) SOP Instance UID (explicit or implicit VR little endian, skipping elements by their
 * length). The dataset walk gives up quietly (no `sopInstanceUid`) at an undefined length, at a tag
 * past (0008,0018), at a malformed element, or when (0008,0018) lies beyond `maxHeadBytes`.
 *
 * Reads only as far as needed (at most `maxHeadBytes` plus one chunk). Returns `stream`, which
 * replays the bytes read and then the rest of `body`, byte for byte, with backpressure; destroying it
 * destroys `body`. Errors: DicomHeadError ('not-dicom', 'bad-meta', 'too-large-head', 'truncated',
 * 'timeout'); an error of `body` itself is passed on unchanged. On error `body` is destroyed. SOP UIDs are not compared here (see
 * `checkDicomHead`).
 */
export async function readDicomHead(
  body: Readable,
  opts: DicomHeadOptions = {},
): Promise<{ head: DicomHead; stream: Readable }> {
  const maxHead = opts.maxHeadBytes ?? DEFAULT_MAX_HEAD;
  const src = new ChunkSource(body, { idleTimeoutMs: opts.idleTimeoutMs, fail: sourceFailure });
  const chunks: Buffer[] = [];
  let total = 0;
  let ended = false;
  let joined: Buffer = Buffer.alloc(0);
  try {
    for (;;) {
      if (joined.length !== total) joined = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
      const r = parseHead(joined, ended, maxHead);
      if (r.kind === 'done') {
        // With an idle limit the rest is read through `src`, which keeps timing the waits.
        const stream =
          opts.idleTimeoutMs === undefined
            ? giveBack(chunks, src, body, ended)
            : replay(chunks, src, body, ended);
        return { head: r.head, stream };
      }
      // Read ahead geometrically (within maxHeadBytes) so a head of many small elements arriving in
      // small chunks is parsed a few times, not once per element.
      const want = Math.max(r.bytes, Math.min(maxHead, total * 2));
      while (total < want && !ended) {
        const c = await src.pull();
        if (c === null) ended = true;
        else {
          chunks.push(c);
          total += c.length;
        }
      }
    }
  } catch (e) {
    // The object is unusable: stop its transfer (for an MTOM part this skips the rest of the part).
    src.release();
    if (!body.destroyed) body.destroy();
    throw e;
  }
}

function sourceFailure(kind: SourceFailureKind, message: string, cause?: unknown): Error {
  if (kind === 'source-error' && cause instanceof Error) return cause;
  return new DicomHeadError(kind === 'timeout' ? 'timeout' : 'truncated', `DICOM ${message}`, { cause });
}

/**
 * The DICOM head of an object held in memory (the chunks in order), parsed in place: no stream.
 * Same errors as `readDicomHead`.
 */
export function parseDicomHead(chunks: Buffer[], opts: DicomHeadOptions = {}): DicomHead {
  const maxHead = opts.maxHeadBytes ?? DEFAULT_MAX_HEAD;
  let i = 0;
  let joined: Buffer = Buffer.alloc(0);
  for (;;) {
    const ended = i >= chunks.length;
    const r = parseHead(joined, ended, maxHead);
    if (r.kind === 'done') return r.head;
    const want = Math.max(r.bytes, Math.min(maxHead, joined.length * 2));
    const take: Buffer[] = [joined];
    let total = joined.length;
    while (total < want && i < chunks.length) {
      take.push(chunks[i]);
      total += chunks[i++].length;
    }
    joined = take.length === 2 && take[0].length === 0 ? take[1] : Buffer.concat(take, total);
  }
}

/**
 * The body again, from its first byte: the bytes read are put back in front of what the body still
 * holds (`unshift`), so the data flows on through the body itself, not through one more stream.
 * A body that has already ended cannot take bytes back: then a replaying stream is made.
 */
function giveBack(head: Buffer[], src: ChunkSource, body: Readable, ended: boolean): Readable {
  if (ended || src.sawEnd || body.readableEnded || body.destroyed) return replay(head, src, body, ended);
  const queued = src.detach();
  for (let k = queued.length - 1; k >= 0; k--) body.unshift(queued[k]);
  for (let k = head.length - 1; k >= 0; k--) body.unshift(head[k]);
  return body;
}

/** `head` chunks again, then the rest of the source. */
function replay(head: Buffer[], src: ChunkSource, body: Readable, ended: boolean): Readable {
  let i = 0;
  let pumping = false;
  let wantMore = false;
  let readDuringPush = false;
  let finished = false;
  const out = new Readable({
    highWaterMark: 256 * 1024,
    read() {
      wantMore = true;
      readDuringPush = true;
      pump();
    },
    destroy(err, cb) {
      src.release();
      if (!finished && !ended && !body.destroyed) body.destroy();
      cb(err);
    },
  });
  // A late failure of the body must not crash a process whose consumer forgot its 'error' handler.
  out.on('error', () => undefined);
  const next = (): Buffer | null | undefined => (i < head.length ? head[i++] : ended ? null : src.tryPull());
  /** Pushes while the consumer wants more and data is at hand; resumes from `_read` or the source. */
  function pump(): void {
    if (pumping || finished) return;
    pumping = true;
    try {
      while (wantMore && !out.destroyed) {
        const c = next();
        if (c === undefined) {
          src.whenReadable(pump);
          return;
        }
        if (c === null) {
          finished = true;
          src.release();
          out.push(null);
          return;
        }
        readDuringPush = false;
        if (!out.push(c) && !readDuringPush) wantMore = false;
      }
    } catch (e) {
      out.destroy(e as Error);
    } finally {
      pumping = false;
    }
  }
  return out;
}

type Parse = { kind: 'need'; bytes: number } | { kind: 'done'; head: DicomHead };

/** Parses what `b` holds; asks for more bytes (`need`) unless `ended`. */
function parseHead(b: Buffer, ended: boolean, maxHead: number): Parse {
  const need = (n: number): Parse => ({ kind: 'need', bytes: n });
  if (b.length < PREAMBLE + 4) {
    if (ended) throw new DicomHeadError('not-dicom', `not DICOM Part 10: only ${b.length} bytes`);
    return need(PREAMBLE + 4);
  }
  if (b.toString('latin1', PREAMBLE, PREAMBLE + 4) !== 'DICM') {
    throw new DicomHeadError('not-dicom', "not DICOM Part 10: no 'DICM' after the 128-byte preamble");
  }

  // File Meta Information: always explicit VR little endian.
  const meta = new Map<number, string>();
  let pos = PREAMBLE + 4;
  let metaEnd = -1;
  for (;;) {
    if (metaEnd >= 0 && pos === metaEnd) break;
    if (metaEnd < 0) {
      if (pos === b.length && ended) break;
      if (b.length < pos + 2) {
        if (ended) throw truncatedMeta();
        return need(pos + 8);
      }
      if (b.readUInt16LE(pos) !== 0x0002) break;
    }
    if (pos + 8 > maxHead) throw tooLarge(maxHead);
    if (b.length < pos + 8) {
      if (ended) throw truncatedMeta();
      return need(pos + 8);
    }
    const group = b.readUInt16LE(pos);
    const element = b.readUInt16LE(pos + 2);
    // Only for messages: formatted when one is needed.
    const tag = () => hexTag(group, element);
    if (group !== 0x0002)
      throw new DicomHeadError('bad-meta', `element ${tag()} inside the File Meta Information`);
    const vr = vrCode(b, pos + 4);
    if (vr < 0) {
      throw new DicomHeadError('bad-meta', `File Meta element ${tag()} has no valid VR (not explicit VR)`);
    }
    let header = 8;
    let len: number;
    if (LONG_VRS.has(vr)) {
      header = 12;
      if (pos + 12 > maxHead) throw tooLarge(maxHead);
      if (b.length < pos + 12) {
        if (ended) throw truncatedMeta();
        return need(pos + 12);
      }
      len = b.readUInt32LE(pos + 8);
      if (len === UNDEFINED_LENGTH) {
        throw new DicomHeadError('bad-meta', `File Meta element ${tag()} has an undefined length`);
      }
    } else {
      len = b.readUInt16LE(pos + 6);
    }
    const valueEnd = pos + header + len;
    if (metaEnd >= 0 && valueEnd > metaEnd) {
      throw new DicomHeadError('bad-meta', `File Meta element ${tag()} runs past the group length`);
    }
    if (valueEnd > maxHead) throw tooLarge(maxHead);
    if (b.length < valueEnd) {
      if (ended) throw truncatedMeta();
      return need(valueEnd);
    }
    if (element === 0x0000) {
      if (pos !== PREAMBLE + 4 || len !== 4) {
        throw new DicomHeadError(
          'bad-meta',
          'File Meta group length (0002,0000) is misplaced or not 4 bytes',
        );
      }
      metaEnd = valueEnd + b.readUInt32LE(pos + header);
      if (metaEnd > maxHead) throw tooLarge(maxHead);
    } else if (element === 0x0002 || element === 0x0003 || element === 0x0010) {
      meta.set(element, uid(b, pos + header, valueEnd));
    }
    pos = valueEnd;
  }
  const required: [number, string][] = [
    [0x0002, 'Media Storage SOP Class UID (0002,0002)'],
    [0x0003, 'Media Storage SOP Instance UID (0002,0003)'],
    [0x0010, 'Transfer Syntax UID (0002,0010)'],
  ];
  for (const [el, name] of required) {
    if (meta.get(el)) continue;
    // Data that stops at the end of an incomplete meta group was cut off rather than malformed.
    if (ended && pos === b.length) throw truncatedMeta();
    throw new DicomHeadError('bad-meta', `File Meta Information lacks ${name}`);
  }
  const head: DicomHead = {
    mediaStorageSopClassUid: meta.get(0x0002) as string,
    mediaStorageSopInstanceUid: meta.get(0x0003) as string,
    transferSyntaxUid: meta.get(0x0010) as string,
    headBytes: pos,
  };
  const done = (): Parse => ({ kind: 'done', head });
  if (DATASET_NOT_WALKED.has(head.transferSyntaxUid)) return done();

  // Dataset, little endian, up to (0008,0018).
  const implicit = head.transferSyntaxUid === TS_IMPLICIT_VR_LE;
  let lastTag = -1;
  for (;;) {
    if (pos === b.length && ended) return done();
    if (pos + 8 > maxHead) return done();
    if (b.length < pos + 8) {
      if (ended) throw truncatedData();
      return need(pos + 8);
    }
    const tag = b.readUInt16LE(pos) * 0x10000 + b.readUInt16LE(pos + 2);
    if (tag > TAG_SOP_INSTANCE || tag <= lastTag) return done();
    lastTag = tag;
    let header = 8;
    let len: number;
    if (implicit) {
      len = b.readUInt32LE(pos + 4);
    } else {
      const vr = vrCode(b, pos + 4);
      if (vr < 0) return done();
      if (LONG_VRS.has(vr)) {
        header = 12;
        if (pos + 12 > maxHead) return done();
        if (b.length < pos + 12) {
          if (ended) throw truncatedData();
          return need(pos + 12);
        }
        len = b.readUInt32LE(pos + 8);
      } else {
        len = b.readUInt16LE(pos + 6);
      }
    }
    if (len === UNDEFINED_LENGTH) return done();
    const valueEnd = pos + header + len;
    if (tag === TAG_SOP_CLASS || tag === TAG_SOP_INSTANCE) {
      if (valueEnd > maxHead) return done();
      if (b.length < valueEnd) {
        if (ended) throw truncatedData();
        return need(valueEnd);
      }
      const value = uid(b, pos + header, valueEnd);
      head.headBytes = valueEnd;
      if (tag === TAG_SOP_CLASS) head.sopClassUid = value;
      else {
        head.sopInstanceUid = value;
        return done();
      }
    }
    pos = valueEnd;
  }
}

/** A UID value without its padding (trailing NULs and spaces, leading spaces). */
function uid(b: Buffer, from: number, to: number): string {
  let end = to;
  while (end > from && (b[end - 1] === 0 || b[end - 1] === 0x20)) end--;
  let start = from;
  while (start < end && b[start] === 0x20) start++;
  return b.toString('latin1', start, end);
}

function hexTag(group: number, element: number): string {
  const h = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  return `(${h(group)},${h(element)})`;
}

function tooLarge(max: number): DicomHeadError {
  return new DicomHeadError('too-large-head', `DICOM File Meta Information does not fit in ${max} bytes`);
}

function truncatedMeta(): DicomHeadError {
  return new DicomHeadError('truncated', 'DICOM data ended inside the File Meta Information');
}

function truncatedData(): DicomHeadError {
  return new DicomHeadError('truncated', 'DICOM data ended inside a dataset element');
}

/**
 * Compares a head with what was asked for. Returns a violation message, or null if the object is
 * acceptable: the meta SOP Instance UID and (when known) the dataset one must both equal
 * `expected.sopInstanceUid`, and the transfer syntax must be one of `expected.transferSyntaxUids`.
 */
export function checkDicomHead(
  head: DicomHead,
  expected: { sopInstanceUid: string; transferSyntaxUids: string[] },
): string | null {
  const meta = head.mediaStorageSopInstanceUid;
  const ds = head.sopInstanceUid;
  if (ds !== undefined && ds !== meta) {
    return `DICOM object is inconsistent: Media Storage SOP Instance UID (0002,0003) ${meta} differs from SOP Instance UID (0008,0018) ${ds}`;
  }
  if (meta !== expected.sopInstanceUid) {
    return `DICOM object has SOP Instance UID ${meta}, expected ${expected.sopInstanceUid}`;
  }
  if (!expected.transferSyntaxUids.includes(head.transferSyntaxUid)) {
    return `DICOM object has Transfer Syntax ${head.transferSyntaxUid}, expected one of ${expected.transferSyntaxUids.join(', ') || '(none)'}`;
  }
  return null;
}
