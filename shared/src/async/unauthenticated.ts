/**
 * What an unauthenticated sender can make the async response receiver read and hold.
 * `/async-response` takes connections without a client certificate (it authenticates the answer —
 * its RelatesTo and who sent it — not the connection), so until the envelope's head has shown that
 * the message answers one of our requests and comes from the community asked:
 *
 *  - at most `UNAUTHENTICATED_BYTES` of the request body are read (the `Gate`; the rest waits in the
 *    socket under backpressure), of which at most `HEAD_BYTES` envelope bytes are kept;
 *  - at most `MAX_PER_ADDRESS` such requests per source address and `MAX_TOTAL` overall are read at
 *    once (`UnauthenticatedBudget`), so an address holds at most MAX_PER_ADDRESS × UNAUTHENTICATED_BYTES;
 *  - the head must arrive within the server's `headersTimeoutMs` (receiver.ts).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { MtomError } from '../mtom/errors';

/** Envelope bytes read at most before the sender is known (the whole SOAP header must fit). */
export const HEAD_BYTES = 64 * 1024;
/** Body bytes read at most before the sender is known: the head plus MIME preamble and part headers. */
export const UNAUTHENTICATED_BYTES = HEAD_BYTES + 32 * 1024;
export const MAX_PER_ADDRESS = 4;
export const MAX_TOTAL = 64;

/**
 * Passes at most `budget` bytes until `open()` is called; beyond, it holds the chunk (and with it
 * the socket, by backpressure). Once open, it passes everything up to `limit` bytes in total and
 * fails with 'too-large' past it.
 */
export class Gate extends Transform {
  bytes = 0;
  private opened = false;
  private held?: { chunk: Buffer; cb: TransformCallback };

  constructor(
    private readonly budget: number,
    public limit: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.bytes + chunk.length > this.limit) {
      cb(new MtomError('too-large', `message larger than the configured maximum of ${this.limit} bytes`));
      return;
    }
    if (this.opened || this.bytes + chunk.length <= this.budget) {
      this.bytes += chunk.length;
      cb(null, chunk);
      return;
    }
    const room = this.budget - this.bytes;
    if (room > 0) {
      this.push(chunk.subarray(0, room));
      this.bytes += room;
    }
    this.held = { chunk: chunk.subarray(Math.max(0, room)), cb };
  }

  /** The sender is known: let the rest through. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    const h = this.held;
    this.held = undefined;
    if (h) {
      this.bytes += h.chunk.length;
      h.cb(null, h.chunk);
    }
  }
}

/** Unauthenticated receptions in progress, per source address and in total. */
export class UnauthenticatedBudget {
  private readonly byAddress = new Map<string, number>();
  private total = 0;

  /** A release function, or undefined when the address (or everyone) is at its limit. */
  take(address: string): (() => void) | undefined {
    const n = this.byAddress.get(address) ?? 0;
    if (n >= MAX_PER_ADDRESS || this.total >= MAX_TOTAL) return undefined;
    this.byAddress.set(address, n + 1);
    this.total++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.total--;
      const m = (this.byAddress.get(address) ?? 1) - 1;
      if (m <= 0) this.byAddress.delete(address);
      else this.byAddress.set(address, m);
    };
  }
}
