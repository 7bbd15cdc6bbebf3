import type { Readable } from 'node:stream';

/** Why a source could not deliver more data. */
export type SourceFailureKind = 'truncated' | 'timeout' | 'source-error';

export interface ChunkSourceOptions {
  /** Bytes queued here before the source is paused (default 256 KiB). */
  highWaterMark?: number;
  /** Longest wait for the next chunk, in ms (default: no limit; the HTTP layer bounds it). */
  idleTimeoutMs?: number;
  /** Builds the error thrown to the reader (so each module throws its own error class). */
  fail: (kind: SourceFailureKind, message: string, cause?: unknown) => Error;
}

const DEFAULT_HWM = 256 * 1024;

function toBuffer(chunk: unknown): Buffer | null {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return null;
}

const swallow = (): void => undefined;

/**
 * Pull interface over a Readable: the source runs in flowing mode into a small bounded queue and is
 * paused when the queue is full, so chunks are handed over whole (no concatenation by `read()`) and
 * backpressure reaches the source. One reader at a time.
 */
export class ChunkSource {
  /** Bytes handed out by `tryPull`/`pull` so far. */
  bytes = 0;
  private readonly queue: Buffer[] = [];
  private head = 0;
  private queued = 0;
  private paused = false;
  private ended = false;
  private failure: Error | null = null;
  private released = false;
  private waiter: (() => void) | null = null;
  private waitingSince = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly hwm: number;

  constructor(
    private readonly src: Readable,
    private readonly opts: ChunkSourceOptions,
  ) {
    this.hwm = opts.highWaterMark ?? DEFAULT_HWM;
    if (src.readableEnded) {
      this.ended = true;
      return;
    }
    if (src.errored) {
      this.failure = opts.fail('source-error', `source failed: ${src.errored.message}`, src.errored);
      return;
    }
    if (src.destroyed) {
      this.failure = opts.fail('truncated', 'source was closed before the end of the data');
      return;
    }
    src.on('data', this.onData);
    src.on('end', this.onEnd);
    src.on('error', this.onError);
    src.on('close', this.onClose);
    src.resume();
  }

  private readonly onData = (chunk: unknown): void => {
    const c = toBuffer(chunk);
    if (c === null) {
      this.failure ??= this.opts.fail('source-error', 'source produced a chunk that is not bytes');
      this.release();
      return;
    }
    if (c.length === 0) return;
    this.queue.push(c);
    this.queued += c.length;
    if (this.queued >= this.hwm && !this.paused) {
      this.paused = true;
      this.src.pause();
    }
    this.notify();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  private readonly onError = (err: Error): void => {
    if (!this.failure && !this.ended) {
      this.failure = this.opts.fail('source-error', `source failed: ${err.message}`, err);
    }
    this.notify();
  };

  private readonly onClose = (): void => {
    if (!this.ended && !this.failure) {
      this.failure = this.opts.fail('truncated', 'source was closed before the end of the data');
    }
    this.notify();
  };

  private notify(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w();
    }
  }

  /** True if `tryPull` would return something other than `undefined`. */
  private get ready(): boolean {
    return this.head < this.queue.length || this.failure !== null || this.ended || this.released;
  }

  /** A queued chunk, `null` at the end of the data, or `undefined` when nothing is available yet. */
  tryPull(): Buffer | null | undefined {
    if (this.head < this.queue.length) {
      const c = this.queue[this.head];
      this.queue[this.head++] = undefined as unknown as Buffer;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      this.queued -= c.length;
      this.bytes += c.length;
      if (this.paused && this.queued < this.hwm && !this.released) {
        this.paused = false;
        this.src.resume();
      }
      return c;
    }
    if (this.failure) throw this.failure;
    if (this.ended) return null;
    if (this.released) throw this.opts.fail('truncated', 'source was released');
    return undefined;
  }

  /**
   * Calls `cb` once, synchronously from the source's event, when `tryPull` can return something
   * (data, end or failure); at once (in a microtask) if it can already. One waiter at a time: a new
   * registration replaces the previous one. With `idleTimeoutMs`, a wait that lasts longer turns
   * into a 'timeout' failure.
   */
  whenReadable(cb: () => void): void {
    if (this.ready) {
      queueMicrotask(cb);
      return;
    }
    this.waiter = cb;
    const ms = this.opts.idleTimeoutMs;
    if (ms !== undefined && ms > 0 && Number.isFinite(ms)) {
      this.waitingSince = Date.now();
      if (!this.timer) this.timer = setTimeout(this.onTimer, ms);
    }
  }

  /** One timer per source, re-armed only while someone waits (no timer work per chunk). */
  private readonly onTimer = (): void => {
    this.timer = null;
    if (!this.waiter || this.ready) return;
    const ms = this.opts.idleTimeoutMs as number;
    const waited = Date.now() - this.waitingSince;
    if (waited >= ms) {
      this.failure = this.opts.fail('timeout', `no data received for ${ms} ms`);
      this.notify();
    } else {
      this.timer = setTimeout(this.onTimer, ms - waited);
    }
  };

  /** Resolves when `tryPull` can return something (see `whenReadable`). */
  waitForData(): Promise<void> {
    return new Promise<void>((resolve) => this.whenReadable(resolve));
  }

  /** Next chunk, or `null` at the end of the data. */
  async pull(): Promise<Buffer | null> {
    for (;;) {
      const c = this.tryPull();
      if (c !== undefined) return c;
      await this.waitForData();
    }
  }

  /**
   * Stops reading: removes the listeners (keeping one that swallows late 'error' events so a late
   * failure of a source nobody listens to any more cannot crash the process) and pauses the source.
   * The caller still owns the source (destroy it, or let the HTTP server dump the rest).
   */
  /** The source has signalled its end (chunks may still be queued). */
  get sawEnd(): boolean {
    return this.ended;
  }

  /**
   * Releases the source and hands back the chunks it had queued but not handed out, so the caller
   * can put them back into the source (`unshift`).
   */
  detach(): Buffer[] {
    const rest = this.queue.slice(this.head);
    this.release();
    return rest;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
    this.src.off('error', this.onError);
    this.src.off('close', this.onClose);
    this.src.on('error', swallow);
    if (!this.ended) this.src.pause();
    this.queue.length = 0;
    this.head = 0;
    this.queued = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.notify();
  }
}
