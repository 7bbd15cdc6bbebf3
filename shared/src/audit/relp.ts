/**
 * RELP (Reliable Event Logging Protocol, as librelp and rsyslog's imrelp speak it) over mutually
 * authenticated TLS: the acknowledged alternative to RFC 5425 for an ARR that offers it. Each
 * record is a `syslog` command the receiver answers with `rsp 200`, so a record counts as delivered
 * only when the receiver said it has it.
 *
 * Frames, both directions: `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. The session starts with
 * `open` (offers: relp_version=0, commands=syslog), sends `syslog` frames with a window of at most
 * `RELP_WINDOW` unacknowledged, and ends with `close`. A `serverclose` from the receiver, a non-200
 * answer or a malformed frame ends the session; unacknowledged records are then sent again on the
 * next one (the receiver de-duplicates by record id, or keeps both: at-least-once).
 */
import type * as tls from 'node:tls';
import { openTls, peerSubject, socketDrained, type AuditConnection, type AuditTlsOptions } from './transport';

/** Unacknowledged frames at most (librelp's default window). */
export const RELP_WINDOW = 128;
const MAX_TXNR = 999_999_999;
/** Largest answer frame we accept from the receiver. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export class RelpError extends Error {}

interface Frame {
  txnr: number;
  command: string;
  data: Buffer;
}

/** Incremental RELP frame decoder (the receiver's answers). */
export class RelpDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    for (;;) {
      const head = /^(\d{1,9}) ([a-z]{1,32}) (\d{1,9})([ \n])/.exec(
        this.buf.subarray(0, 64).toString('latin1'),
      );
      if (!head) {
        if (this.buf.length >= 64 || /[^0-9a-z \n]/.test(this.buf.subarray(0, 64).toString('latin1')))
          throw new RelpError('malformed RELP frame header');
        return out;
      }
      const len = Number(head[3]);
      if (len > MAX_RESPONSE_BYTES) throw new RelpError(`RELP frame of ${len} bytes`);
      const start = head[0].length;
      if (head[4] === '\n') {
        if (len !== 0) throw new RelpError('RELP frame without data but with a length');
        out.push({ txnr: Number(head[1]), command: head[2], data: Buffer.alloc(0) });
        this.buf = this.buf.subarray(start);
        continue;
      }
      if (this.buf.length < start + len + 1) return out;
      if (this.buf[start + len] !== 0x0a) throw new RelpError('RELP frame not terminated by LF');
      out.push({
        txnr: Number(head[1]),
        command: head[2],
        data: Buffer.from(this.buf.subarray(start, start + len)),
      });
      this.buf = this.buf.subarray(start + len + 1);
    }
  }
}

function frame(txnr: number, command: string, data?: Buffer): Buffer {
  if (!data || data.length === 0) return Buffer.from(`${txnr} ${command} 0\n`, 'latin1');
  return Buffer.concat([
    Buffer.from(`${txnr} ${command} ${data.length} `, 'latin1'),
    data,
    Buffer.from('\n'),
  ]);
}

/** The status code of a `rsp` frame's data (`200 OK…`). */
function status(data: Buffer): number {
  const m = /^(\d{3})/.exec(data.subarray(0, 3).toString('latin1'));
  return m ? Number(m[1]) : 0;
}

export async function connectRelp(
  host: string,
  port: number,
  opts: AuditTlsOptions,
): Promise<AuditConnection> {
  const socket = await openTls(host, port, opts);
  const conn = new RelpConnection(socket);
  try {
    await conn.open(opts.handshakeTimeoutMs ?? 10_000);
  } catch (e) {
    socket.destroy();
    throw e;
  }
  return conn;
}

class RelpConnection implements AuditConnection {
  readonly kind = 'relp' as const;
  readonly confirmation = 'ack' as const;
  readonly peer?: string;
  private readonly decoder = new RelpDecoder();
  private readonly waiting = new Map<number, (code: number, data: Buffer) => void>();
  private txnr = 0;
  private closed = false;
  private lastError?: Error;
  private closeCb?: (err?: Error) => void;
  private windowWaiters: (() => void)[] = [];

  constructor(private readonly socket: tls.TLSSocket) {
    this.peer = peerSubject(socket);
    socket.on('error', (err) => (this.lastError = err));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.waiting.clear();
      this.releaseWindow();
      this.closeCb?.(this.lastError);
    });
  }

  private next(): number {
    this.txnr = this.txnr >= MAX_TXNR ? 1 : this.txnr + 1;
    return this.txnr;
  }

  private fail(err: Error): void {
    this.lastError ??= err;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      return this.fail(e as Error);
    }
    for (const f of frames) {
      if (f.command === 'serverclose')
        return this.fail(new RelpError('the receiver closed the RELP session'));
      if (f.command !== 'rsp') return this.fail(new RelpError(`unexpected RELP command ${f.command}`));
      const cb = this.waiting.get(f.txnr);
      if (!cb) return this.fail(new RelpError(`RELP answer for unknown transaction ${f.txnr}`));
      this.waiting.delete(f.txnr);
      cb(status(f.data), f.data);
    }
    this.releaseWindow();
  }

  private releaseWindow(): void {
    if (!this.closed && this.waiting.size >= RELP_WINDOW) return;
    const w = this.windowWaiters;
    this.windowWaiters = [];
    for (const f of w) f();
  }

  private send(command: string, data: Buffer | undefined, cb: (code: number, data: Buffer) => void): boolean {
    const n = this.next();
    this.waiting.set(n, cb);
    return this.socket.write(frame(n, command, data));
  }

  open(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new RelpError('no answer to the RELP open command')), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        reject(this.lastError ?? new RelpError('connection closed during the RELP open'));
      });
      const offers = Buffer.from('relp_version=0\nrelp_software=xcai\ncommands=syslog', 'latin1');
      this.send('open', offers, (code, data) => {
        clearTimeout(timer);
        if (code !== 200)
          return reject(new RelpError(`RELP open refused: ${data.toString('latin1').slice(0, 200)}`));
        if (!/(^|\n)commands=([^\n]*\b)?syslog\b/.test(data.toString('latin1')))
          return reject(new RelpError('the RELP receiver does not offer the syslog command'));
        resolve();
      });
    });
  }

  write(message: Buffer, acked: () => void): boolean {
    if (this.closed || this.socket.destroyed) return false;
    const ok = this.send('syslog', message, (code, data) => {
      if (code === 200) acked();
      else
        this.fail(
          new RelpError(`record refused by the RELP receiver: ${data.toString('latin1').slice(0, 200)}`),
        );
    });
    return ok && this.waiting.size < RELP_WINDOW;
  }

  drained(): Promise<void> {
    const socketReady = this.closed ? Promise.resolve() : socketDrained(this.socket);
    const windowOpen =
      this.closed || this.waiting.size < RELP_WINDOW
        ? Promise.resolve()
        : new Promise<void>((resolve) => this.windowWaiters.push(resolve));
    return Promise.all([socketReady, windowOpen]).then(() => undefined);
  }

  onClose(cb: (err?: Error) => void): void {
    this.closeCb = cb;
    if (this.closed) cb(this.lastError);
  }

  /** Sends `close` and waits for its answer and the end of the connection. True: every answer came. */
  end(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve(false);
      }, timeoutMs);
      let answered = false;
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(answered);
      });
      this.send('close', undefined, () => {
        answered = this.waiting.size === 0;
        this.socket.end();
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
