import { randomBytes, randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { MtomError } from './errors';
import { quoteMimeParam } from './media-type';
import { stripAngles } from './multipart';

export interface MtomWriterOptions {
  /** Default: `MIMEBoundary_` + 56 random hex digits (224 bits from crypto), 69 characters. */
  boundary?: string;
  /** Content-ID of the root part, without <>. Default: `root.<uuid>@xcai`. */
  rootContentId?: string;
  /** SOAP action, added to the Content-Type as `action="…"`. */
  action?: string;
}

const HEADER_VALUE = /^[\x20-\x7e]*$/;
/**
 * Bytes a part body may have waiting in the output before the body is paused. Above the socket's
 * own high-water mark (16 KiB), so that a 64 KiB chunk does not pause the body every time.
 */
const OUTPUT_BUFFER = 256 * 1024;
const CONTENT_ID = /^[\x21-\x3b\x3d\x3f-\x7e]+$/; // visible ASCII without '<' and '>'

/**
 * Writes an MTOM/XOP package (multipart/related, root application/xop+xml) to a Writable, streaming
 * the attachment bodies with backpressure.
 *
 * The boundary holds 224 random bits: the chance that it occurs in any content is negligible (2^-224
 * per position), so content is not scanned for it. Order: `writeRoot` once, then `writePart`s one at a
 * time, then `end`. If a part body fails, `writePart` rejects and the package is left without its
 * close delimiter, so a reader sees it truncated; the caller should then destroy the output.
 *
 * Body chunks that arrive in one turn of the event loop leave in one system call: the output is
 * corked while they are written and uncorked once the loop has handled the input at hand
 * (`setImmediate`), or at once when 256 KiB are waiting (then the body is paused until 'drain').
 */
export class MtomWriter {
  readonly boundary: string;
  readonly rootContentId: string;
  private readonly action: string | undefined;
  /**
   * "CRLF--boundary", written right after each part (not before the next one), so a package cut
   * short still ends every part already written: a reader keeps those and sees no close delimiter.
   */
  private readonly delimiter: Buffer;
  private state: 'start' | 'parts' | 'busy' | 'ended' | 'failed' = 'start';
  /** The output is corked by `batch` until `flush`. */
  private corked = false;

  constructor(
    private readonly out: Writable,
    opts: MtomWriterOptions = {},
  ) {
    // Long on purpose: readers find the delimiter with a substring search that gets faster with its length.
    this.boundary = opts.boundary ?? `MIMEBoundary_${randomBytes(28).toString('hex')}`;
    if (!/^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/.test(this.boundary)) {
      throw new MtomError(
        'bad-header',
        'MIME boundary must be 1-70 RFC 2046 boundary characters (no spaces)',
      );
    }
    this.delimiter = Buffer.from(`\r\n--${this.boundary}`, 'latin1');
    this.rootContentId = checkContentId(opts.rootContentId ?? `root.${randomUUID()}@xcai`);
    if (opts.action !== undefined) checkHeaderValue('action', opts.action);
    this.action = opts.action;
  }

  /** The HTTP Content-Type of the package. */
  get contentType(): string {
    const ct =
      `multipart/related; type="application/xop+xml"; boundary=${quoteMimeParam(this.boundary)}; ` +
      `start=${quoteMimeParam(`<${this.rootContentId}>`)}; start-info="application/soap+xml"`;
    return this.action === undefined ? ct : `${ct}; action=${quoteMimeParam(this.action)}`;
  }

  /** A fresh Content-ID (no <>), `<uuid>@xcai`; use `cidHref` for the xop:Include href. */
  newContentId(): string {
    return `${randomUUID()}@xcai`;
  }

  /** Writes the root part (the SOAP envelope). */
  writeRoot(xml: string | Buffer): Promise<void> {
    return this.step('start', 'parts', () => {
      const head =
        `--${this.boundary}\r\n` +
        'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n' +
        'Content-Transfer-Encoding: binary\r\n' +
        `Content-ID: <${this.rootContentId}>\r\n\r\n`;
      const body = typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml;
      return this.write(Buffer.concat([Buffer.from(head, 'latin1'), body, this.delimiter]));
    });
  }

  /**
   * Writes one attachment part, piping `body` with backpressure; resolves with its byte count.
   * Rejects (leaving the package unterminated, and destroying `body`) if the body or the output fails.
   */
  async writePart(contentId: string, contentType: string, body: Readable): Promise<number> {
    const head = this.partHead(contentId, contentType);
    return this.step('parts', 'parts', () => this.pipeBody(head, body)).catch((e: unknown) => {
      if (!body.destroyed) body.destroy();
      throw e;
    });
  }

  /** Writes one attachment part from memory. */
  async writePartFromBuffer(contentId: string, contentType: string, data: Buffer): Promise<number> {
    const head = this.partHead(contentId, contentType);
    return this.step('parts', 'parts', async () => {
      await this.write(head);
      await this.write(data);
      await this.write(this.delimiter);
      return data.length;
    });
  }

  /** Writes the close delimiter (does not end the output stream). */
  end(): Promise<void> {
    return this.step('parts', 'ended', () => this.write(Buffer.from('--\r\n', 'latin1')));
  }

  /** Runs one write step in order: `from` → busy → `to`, or → failed if it throws. */
  private async step<T>(from: 'start' | 'parts', to: 'parts' | 'ended', fn: () => Promise<T>): Promise<T> {
    if (this.state !== from) {
      const what =
        this.state === 'busy' ? 'another part is being written' : `writer is in state ${this.state}`;
      throw new MtomError('bad-state', `MtomWriter used out of order: ${what}`);
    }
    this.state = 'busy';
    try {
      const r = await fn();
      this.state = to;
      return r;
    } catch (e) {
      this.state = 'failed';
      throw e;
    }
  }

  private partHead(contentId: string, contentType: string): Buffer {
    const cid = checkContentId(contentId);
    checkHeaderValue('Content-Type', contentType);
    return Buffer.from(
      `\r\nContent-Type: ${contentType}\r\n` +
        'Content-Transfer-Encoding: binary\r\n' +
        `Content-ID: <${cid}>\r\n\r\n`,
      'latin1',
    );
  }

  /** Corks the output until the event loop has handled the input at hand (see the class comment). */
  private batch(): void {
    if (this.corked) return;
    this.corked = true;
    this.out.cork();
    setImmediate(this.flush);
  }

  /** Sends what `batch` held back. */
  private readonly flush = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.out.uncork();
  };

  /** Writes one buffer, waiting for 'drain' when the output is full. */
  private write(chunk: Buffer): Promise<void> {
    const out = this.out;
    this.flush();
    if (out.destroyed || out.writableEnded) {
      return Promise.reject(new MtomError('write-failed', 'MTOM output is closed'));
    }
    if (out.write(chunk)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        out.off('drain', onDrain);
        out.off('error', onError);
        out.off('close', onClose);
      };
      const onDrain = (): void => {
        cleanup();
        resolve();
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(new MtomError('write-failed', `MTOM output failed: ${err.message}`, { cause: err }));
      };
      const onClose = (): void => {
        cleanup();
        reject(new MtomError('write-failed', 'MTOM output closed while writing'));
      };
      out.on('drain', onDrain);
      out.on('error', onError);
      out.on('close', onClose);
    });
  }

  /** Writes the part head, then the body's chunks as they come ('data' events, paused while the output is full). */
  private pipeBody(head: Buffer, body: Readable): Promise<number> {
    const out = this.out;
    return new Promise<number>((resolve, reject) => {
      let n = 0;
      let settled = false;
      const finish = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        // After a failure nothing more is written: send what was (whole parts) without waiting.
        if (err) this.flush();
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onBodyError);
        body.off('close', onBodyClose);
        out.off('drain', onDrain);
        out.off('error', onOutError);
        out.off('close', onOutClose);
        if (err) reject(err);
        else resolve(n);
      };
      const onData = (chunk: Buffer | string): void => {
        const c = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        n += c.length;
        this.batch();
        if (!out.write(c) && out.writableLength >= OUTPUT_BUFFER) {
          this.flush();
          body.pause();
        }
      };
      const onDrain = (): void => {
        body.resume();
      };
      const onEnd = (): void => {
        out.write(this.delimiter);
        finish(null);
      };
      const onBodyError = (err: Error): void =>
        finish(new MtomError('source-error', `MTOM part body failed: ${err.message}`, { cause: err }));
      const onBodyClose = (): void => {
        if (!body.readableEnded) finish(new MtomError('truncated', 'MTOM part body closed before its end'));
      };
      const onOutError = (err: Error): void =>
        finish(new MtomError('write-failed', `MTOM output failed: ${err.message}`, { cause: err }));
      const onOutClose = (): void =>
        finish(new MtomError('write-failed', 'MTOM output closed while writing'));
      if (out.destroyed || out.writableEnded) return onOutClose();
      // The head is small: written without waiting for 'drain'; the body's chunks then wait as needed.
      out.write(head);
      if (body.readableEnded) return onEnd();
      if (body.errored) return onBodyError(body.errored);
      if (body.destroyed) return onBodyClose();
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onBodyError);
      body.on('close', onBodyClose);
      out.on('drain', onDrain);
      out.on('error', onOutError);
      out.on('close', onOutClose);
      body.resume();
    });
  }
}

function checkContentId(id: string): string {
  const cid = stripAngles(id);
  if (!CONTENT_ID.test(cid)) {
    throw new MtomError('bad-header', `Content-ID must be visible ASCII without <>: ${JSON.stringify(id)}`);
  }
  return cid;
}

function checkHeaderValue(name: string, value: string): void {
  if (!HEADER_VALUE.test(value)) {
    throw new MtomError(
      'bad-header',
      `${name} must be printable ASCII on one line: ${JSON.stringify(value)}`,
    );
  }
}
