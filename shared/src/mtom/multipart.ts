import { Readable } from 'node:stream';
import { ChunkSource, type SourceFailureKind } from './chunk-source';
import { MtomError } from './errors';
import { parseMediaType } from './media-type';
import type { MimePart, MultipartLimits, PartHeaders } from './types';

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
/** RFC 2046 allows 70 characters; be liberal but bounded. */
const MAX_BOUNDARY_LENGTH = 200;
/** Buffered bytes per part body before backpressure stops reading the source. */
const BODY_HIGH_WATER_MARK = 256 * 1024;

const NEED = Symbol('need-more-input');
const END = Symbol('end-of-part');
type Scan = Buffer | typeof NEED | typeof END;
type State = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'epilogue' | 'done';

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * The boundary of a multipart Content-Type header (quoted or not).
 * @throws MtomError 'bad-content-type' if it is missing, empty, too long or holds line breaks.
 */
export function boundaryFromContentType(contentTypeHeader: string): string {
  const mt = parseMediaType(contentTypeHeader);
  if (!mt || !mt.type.startsWith('multipart/')) {
    throw new MtomError('bad-content-type', `not a multipart Content-Type: ${clip(contentTypeHeader)}`);
  }
  const b = mt.params.boundary;
  if (b === undefined || b.length === 0) {
    throw new MtomError('bad-content-type', 'multipart Content-Type without a boundary parameter');
  }
  if (b.length > MAX_BOUNDARY_LENGTH || /[\r\n]/.test(b)) {
    throw new MtomError('bad-content-type', `unusable multipart boundary (${b.length} characters)`);
  }
  return b;
}

/**
 * Streams the parts of a multipart body (RFC 2046, RFC 2387).
 *
 * Each part's `body` is a Readable with backpressure; what is buffered is bounded (a source queue
 * and the body's high-water mark, 256 KiB each, plus one chunk). The next part is read only once the previous body has ended or been
 * destroyed, so `next()` waits for the previous body:
 * - to **skip** a part call `part.body.destroy()` (or `part.body.resume()`, which reads it through);
 *   a body that nobody has started to read (no listener, not piped, not resumed) when `next()` is
 *   called is skipped automatically;
 * - a body that was started and then left paused makes `next()` wait (the consumer's own stall).
 *
 * Being liberal: CRLF or bare LF line ends, whitespace after the boundary, preamble and epilogue,
 * a part starting directly with its delimiter (empty body without the CRLF). Being strict: a boundary
 * followed by anything but padding, a line end or `--` is an error, as is input ending before the
 * close delimiter (`truncated`, on the current body and on the iterator). Limits: header block size,
 * part count, total bytes (preamble and epilogue included) and, when set, the wait for input.
 *
 * On error, `return()` or the end, the source is released (listeners removed, paused) but not
 * destroyed: the caller owns it.
 */
export function parseMultipart(
  source: Readable,
  contentTypeHeader: string,
  limits: MultipartLimits,
): MultipartReader {
  return new MultipartReader(source, boundaryFromContentType(contentTypeHeader), limits);
}

interface PartState {
  body: Readable;
  /** The delimiter after this part's body was reached. */
  finished: boolean;
  /** `_read` was called at least once. */
  readCalled: boolean;
  /** The consumer destroyed the body: discard the rest of it. */
  skipping: boolean;
  /** The body wants more data (its `_read` was called since the last refused push). */
  wantMore: boolean;
  /** `_read` was called during a `push`. */
  readDuringPush: boolean;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class MultipartReader implements AsyncIterableIterator<MimePart> {
  private readonly src: ChunkSource;
  /** "\n--boundary": found with indexOf; a CR before it belongs to the delimiter too. */
  private readonly lfNeedle: Buffer;
  /** "\r\n--boundary": the longest delimiter prefix that may be held back at the end of a chunk. */
  private readonly crlfNeedle: Buffer;
  /** "--boundary". */
  private readonly dashBoundary: Buffer;
  /** Unprocessed input. Starts with a virtual line break so a leading "--boundary" is a delimiter. */
  private buf: Buffer = Buffer.from('\r\n');
  /** Body bytes to hand out before `buf` (a held-back tail that turned out not to be a delimiter). */
  private front: Buffer | null = null;
  /** The body scan has handed out the last bytes before the delimiter. */
  private atDelimiter = false;
  /** At the first byte of a body: a body starting directly with "--boundary" is empty. */
  private bodyStart = false;
  /** Where the search for the end of the header block resumes. */
  private headerScanFrom = 0;
  private state: State = 'preamble';
  private parts = 0;
  private current: PartState | null = null;
  private failure: Error | null = null;
  /** `return()` was called or the message ended: release the source as soon as no body needs it. */
  private closed = false;
  private pumping = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    source: Readable,
    boundary: string,
    private readonly limits: MultipartLimits,
  ) {
    this.lfNeedle = Buffer.from(`\n--${boundary}`, 'latin1');
    this.crlfNeedle = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
    this.src = new ChunkSource(source, {
      idleTimeoutMs: limits.idleTimeoutMs,
      // A source failing with an MtomError (e.g. a time limit upstream) is reported as that error.
      fail: (kind: SourceFailureKind, message: string, cause?: unknown) =>
        cause instanceof MtomError ? cause : new MtomError(kind, `multipart ${message}`, { cause }),
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next part, or done after the close delimiter. Calls are serialised. */
  next(): Promise<IteratorResult<MimePart>> {
    const p = this.chain.then(() => this.advance());
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Stops iterating. A body that is being read stays readable to its end; the source is released then
   * (or now, if no body needs it).
   */
  async return(): Promise<IteratorResult<MimePart>> {
    this.closed = true;
    const part = this.current;
    if (!part || part.finished || part.skipping) this.src.release();
    return DONE;
  }

  /**
   * Reads and drops everything that is left (destroying the current body if it is still open),
   * up to the end of the input; rejects if the rest is malformed.
   */
  async discard(): Promise<void> {
    const part = this.current;
    if (part && !part.finished && !part.body.destroyed) part.body.destroy();
    for (;;) {
      const r = await this.next();
      if (r.done) return;
      r.value.body.destroy();
    }
  }

  private async advance(): Promise<IteratorResult<MimePart>> {
    if (this.failure) throw this.failure;
    if (this.state === 'done' || this.closed) return DONE;
    try {
      if (this.current) await this.finishCurrent();
      if (this.closed) return DONE;
      if (this.state === 'preamble') {
        for (;;) {
          const r = this.scan();
          if (r === END) break;
          if (r === NEED) await this.feedMore();
        }
        this.state = 'after-boundary';
      }
      let after: 'close' | 'part' | typeof NEED;
      while ((after = this.scanAfterBoundary()) === NEED) await this.feedMore();
      if (after === 'close') {
        this.state = 'epilogue';
        await this.drainEpilogue();
        this.state = 'done';
        this.closed = true;
        this.src.release();
        return DONE;
      }
      this.parts++;
      if (this.parts > this.limits.maxParts) {
        throw new MtomError(
          'too-many-parts',
          `multipart message has more than ${this.limits.maxParts} parts`,
        );
      }
      this.state = 'headers';
      this.headerScanFrom = 0;
      let headers: PartHeaders | typeof NEED;
      while ((headers = this.scanHeaders()) === NEED) await this.feedMore();
      this.state = 'body';
      this.bodyStart = true;
      return { done: false, value: this.openPart(headers) };
    } catch (e) {
      throw this.fail(e);
    }
  }

  /** Waits until the current body has reached its delimiter, skipping it if nobody reads it. */
  private async finishCurrent(): Promise<void> {
    const part = this.current as PartState;
    if (!part.finished) {
      if (!part.skipping && this.untouched(part)) {
        // Give a consumer that attaches a reader right after calling next() one turn to do so.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (!part.skipping && this.untouched(part)) part.body.destroy();
      }
      if (part.skipping) this.pump(part);
      await part.done;
    }
    this.current = null;
  }

  private untouched(part: PartState): boolean {
    const b = part.body;
    return (
      !part.readCalled &&
      !b.destroyed &&
      b.readableFlowing !== true &&
      b.listenerCount('data') === 0 &&
      b.listenerCount('readable') === 0
    );
  }

  private openPart(headers: PartHeaders): MimePart {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined); // also reported through next() and the body
    const part: PartState = {
      body: undefined as unknown as Readable,
      finished: false,
      readCalled: false,
      skipping: false,
      wantMore: false,
      readDuringPush: false,
      done,
      resolve,
      reject,
    };
    part.body = new Readable({
      highWaterMark: BODY_HIGH_WATER_MARK,
      read: () => {
        part.readCalled = true;
        part.wantMore = true;
        part.readDuringPush = true;
        this.pump(part);
      },
      destroy: (err, cb) => {
        if (!part.finished) {
          // Skip the rest of the part now, so a next() that is already waiting goes on.
          part.skipping = true;
          this.pump(part);
        }
        cb(err);
      },
    });
    // Bad input must not crash the process even if a consumer forgot to handle 'error' on a body
    // (e.g. a bare pipe()): the error still reaches its own listeners and next().
    part.body.on('error', () => undefined);
    this.current = part;
    return { headers, body: part.body };
  }

  /**
   * Moves body bytes from the source into the part's body (or drops them when skipping) for as long
   * as the body wants more and input is at hand; then returns, to be called again by the body's
   * `_read` or, synchronously from the source's 'data' event, by `whenReadable`.
   */
  private pump(part: PartState): void {
    if (this.pumping || part.finished || this.failure) return;
    this.pumping = true;
    try {
      for (;;) {
        if (part.skipping) {
          if (this.closed) {
            // Nothing will read past this part: stop here.
            this.src.release();
            part.resolve();
            return;
          }
        } else if (!part.wantMore) {
          return;
        }
        const r = this.scan();
        if (r === NEED) {
          if (!this.tryFeed()) {
            this.src.whenReadable(() => this.pump(part));
            return;
          }
        } else if (r === END) {
          part.finished = true;
          this.state = 'after-boundary';
          if (!part.skipping) part.body.push(null);
          part.resolve();
          if (this.closed) this.src.release();
          return;
        } else if (!part.skipping) {
          part.readDuringPush = false;
          if (!part.body.push(r) && !part.readDuringPush) part.wantMore = false;
        }
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.pumping = false;
    }
  }

  /** Records the first failure, fails the open body and releases the source. */
  private fail(e: unknown): Error {
    if (!this.failure) {
      this.failure =
        e instanceof Error ? e : new MtomError('source-error', `multipart parsing failed: ${String(e)}`);
      this.state = 'done';
      const part = this.current;
      if (part && !part.finished) {
        part.reject(this.failure);
        if (!part.body.destroyed) part.body.destroy(this.failure);
      }
      this.src.release();
    }
    return this.failure;
  }

  /** Adds input to `buf`, waiting for it if needed. */
  private async feedMore(): Promise<void> {
    while (!this.tryFeed()) await this.src.waitForData();
  }

  /** Adds a chunk that is available now; false if there is none yet. Throws at the end of input. */
  private tryFeed(): boolean {
    const c = this.src.tryPull();
    if (c === undefined) return false;
    if (c === null) throw this.truncated();
    if (this.src.bytes > this.limits.maxTotalBytes) {
      throw new MtomError('too-large', `multipart message exceeds ${this.limits.maxTotalBytes} bytes`);
    }
    const old = this.buf;
    if (old.length === 0) {
      this.buf = c;
      return true;
    }
    const n = this.crlfNeedle.length;
    if ((this.state === 'body' || this.state === 'preamble') && !this.bodyStart && c.length >= n) {
      // `old` is a held-back tail shorter than the delimiter. Look for a delimiter across the join in a
      // small buffer instead of copying the whole chunk: if there is none, `old` is plain body data.
      if (Buffer.concat([old, c.subarray(0, n)]).indexOf(this.lfNeedle) < 0) {
        this.front = old;
        this.buf = c;
        return true;
      }
    }
    this.buf = Buffer.concat([old, c]);
    return true;
  }

  private truncated(): MtomError {
    const where =
      this.state === 'preamble'
        ? 'before the first boundary'
        : this.state === 'body'
          ? `inside part ${this.parts} (no delimiter after its body)`
          : this.state === 'headers'
            ? `in the headers of part ${this.parts}`
            : 'after a boundary (no close delimiter)';
    return new MtomError('truncated', `multipart input ended ${where}`);
  }

  /**
   * Next piece of body (or preamble) data, END when the delimiter has been consumed (`buf` then starts
   * right after "--boundary"), or NEED. Never copies body bytes: pieces are views of input chunks.
   */
  private scan(): Scan {
    if (this.front) {
      const f = this.front;
      this.front = null;
      return f;
    }
    if (this.atDelimiter) {
      this.atDelimiter = false;
      return END;
    }
    const buf = this.buf;
    if (this.bodyStart) {
      const dash = this.dashBoundary;
      if (buf.length < dash.length) {
        if (dash.compare(buf, 0, buf.length, 0, buf.length) === 0) return NEED;
      } else if (buf.compare(dash, 0, dash.length, 0, dash.length) === 0) {
        this.bodyStart = false;
        this.buf = buf.subarray(dash.length);
        return END;
      }
      this.bodyStart = false;
    }
    if (buf.length === 0) return NEED;
    const i = buf.indexOf(this.lfNeedle);
    if (i >= 0) {
      const end = i > 0 && buf[i - 1] === CR ? i - 1 : i;
      this.buf = buf.subarray(i + this.lfNeedle.length);
      if (end === 0) return END;
      this.atDelimiter = true;
      return buf.subarray(0, end);
    }
    const keep = this.heldBack(buf);
    if (keep === buf.length) return NEED;
    this.buf = buf.subarray(buf.length - keep);
    return buf.subarray(0, buf.length - keep);
  }

  /** Length of the longest tail of `buf` that could begin a delimiter ("\r\n--bou", "\n--b", "\r"…). */
  private heldBack(buf: Buffer): number {
    const n = buf.length;
    const crlf = this.crlfNeedle;
    for (let p = Math.max(0, n - crlf.length + 1); p < n; p++) {
      const b = buf[p];
      if (b === CR) {
        if (buf.compare(crlf, 0, n - p, p, n) === 0) return n - p;
      } else if (b === LF) {
        if (buf.compare(this.lfNeedle, 0, n - p, p, n) === 0) return n - p;
      }
    }
    return 0;
  }

  /** After "--boundary": "--" (close delimiter) or transport padding and a line end. */
  private scanAfterBoundary(): 'close' | 'part' | typeof NEED {
    const buf = this.buf;
    if (buf.length >= 2 && buf[0] === DASH && buf[1] === DASH) {
      this.buf = buf.subarray(2);
      return 'close';
    }
    if (buf.length === 1 && buf[0] === DASH) return NEED;
    const lf = buf.indexOf(LF);
    const lineEnd = lf < 0 ? buf.length : lf;
    for (let k = 0; k < lineEnd; k++) {
      const b = buf[k];
      if (b === 0x20 || b === 0x09 || (b === CR && k === lineEnd - 1)) continue;
      throw new MtomError(
        'bad-delimiter',
        `multipart boundary followed by unexpected bytes (${JSON.stringify(buf.subarray(0, Math.min(lineEnd, 40)).toString('latin1'))})`,
      );
    }
    if (lf < 0) {
      if (buf.length > this.limits.maxPartHeaderBytes) {
        throw new MtomError('header-too-large', 'multipart transport padding too long');
      }
      return NEED;
    }
    this.buf = buf.subarray(lf + 1);
    return 'part';
  }

  /** The header block of a part, up to and including the empty line. */
  private scanHeaders(): PartHeaders | typeof NEED {
    const buf = this.buf;
    const max = this.limits.maxPartHeaderBytes;
    let end: number;
    let next: number;
    if (buf.length >= 1 && buf[0] === LF) {
      end = 0;
      next = 1;
    } else if (buf.length >= 2 && buf[0] === CR && buf[1] === LF) {
      end = 0;
      next = 2;
    } else {
      const from = this.headerScanFrom;
      const a = buf.indexOf('\n\n', from, 'latin1');
      const b = buf.indexOf('\n\r\n', from, 'latin1');
      if (a < 0 && b < 0) {
        if (buf.length > max + 3) {
          throw new MtomError('header-too-large', `part ${this.parts} header block exceeds ${max} bytes`);
        }
        this.headerScanFrom = Math.max(0, buf.length - 2);
        return NEED;
      }
      const k = a >= 0 && (b < 0 || a < b) ? a : b;
      end = k + 1;
      next = k + (k === a ? 2 : 3);
    }
    if (end > max) {
      throw new MtomError('header-too-large', `part ${this.parts} header block exceeds ${max} bytes`);
    }
    const headers = parseHeaderBlock(buf.subarray(0, end), this.parts);
    this.buf = buf.subarray(next);
    return headers;
  }

  private async drainEpilogue(): Promise<void> {
    this.buf = Buffer.alloc(0);
    for (;;) {
      const c = this.src.tryPull();
      if (c === null) return;
      if (c === undefined) {
        await this.src.waitForData();
        continue;
      }
      if (this.src.bytes > this.limits.maxTotalBytes) {
        throw new MtomError('too-large', `multipart message exceeds ${this.limits.maxTotalBytes} bytes`);
      }
    }
  }
}

/** Parses "Name: value" lines (folded lines joined); names lower-cased, Content-ID without <>. */
export function parseHeaderBlock(block: Buffer, partNumber = 0): PartHeaders {
  const all: Record<string, string> = Object.create(null) as Record<string, string>;
  const first: Record<string, string> = Object.create(null) as Record<string, string>;
  const lines = block.toString('utf8').split(/\r?\n/);
  const unfolded: string[] = [];
  for (const line of lines) {
    if (line.length === 0 || line === '\r') continue;
    if ((line[0] === ' ' || line[0] === '\t') && unfolded.length > 0) {
      unfolded[unfolded.length - 1] += ' ' + line.trim();
    } else {
      unfolded.push(line);
    }
  }
  for (const line of unfolded) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
    if (!name || /[\s]/.test(name)) {
      throw new MtomError(
        'bad-header',
        `part ${partNumber}: malformed header line ${clip(JSON.stringify(line))}`,
      );
    }
    const value = line.slice(colon + 1).trim();
    if (name in all) {
      all[name] = `${all[name]}, ${value}`;
    } else {
      all[name] = value;
      first[name] = value;
    }
  }
  // A repeated Content-ID/-Type/-Transfer-Encoding is malformed; the first one counts.
  const headers: PartHeaders = { all };
  if (first['content-id'] !== undefined) headers.contentId = stripAngles(first['content-id']);
  if (first['content-type'] !== undefined) headers.contentType = first['content-type'];
  if (first['content-transfer-encoding'] !== undefined) {
    headers.contentTransferEncoding = first['content-transfer-encoding'];
  }
  return headers;
}

/** `<id>` → `id` (surrounding whitespace removed too). */
export function stripAngles(id: string): string {
  const t = id.trim();
  return t.length >= 2 && t[0] === '<' && t[t.length - 1] === '>' ? t.slice(1, -1).trim() : t;
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
