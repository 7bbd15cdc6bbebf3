/**
 * Connections that have not proven anything yet are bounded, so that a flood of idle TCP
 * connections cannot lock legitimate peers out:
 *
 *  - half-open: accepted, TLS handshake not complete. Destroyed when the handshake has not
 *    completed within `handshakeTimeoutMs`; at most `maxHalfOpenPerAddress` per source address and
 *    `maxHalfOpen` in total;
 *  - idle: TLS done (or plain HTTP) and no request in progress — before the first request and
 *    between keep-alive requests; at most `maxIdlePerAddress` per source address and `maxIdle` in
 *    total (the header timeout and keep-alive timeout end them in time anyway).
 *
 * Beyond a bound the OLDEST connection of that kind (of that address, or overall) is closed, not
 * the new one: a flood then only ever displaces itself, while a peer's fresh connection completes
 * its handshake and its request within milliseconds and is served. Refusing the newest instead
 * would hand the flooder every slot.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../util/log';

export interface ConnectionBounds {
  maxHalfOpenPerAddress: number;
  maxHalfOpen: number;
  maxIdlePerAddress: number;
  maxIdle: number;
  handshakeTimeoutMs: number;
}

type Kind = 'half-open' | 'idle';

interface Entry {
  /** The accepted TCP socket (destroying it also ends the TLS socket on top of it). */
  raw: Socket;
  address: string;
  kind?: Kind;
  timer?: NodeJS.Timeout;
}

/** Entries of one kind, oldest first, in total and per address. */
class AgeList {
  private readonly all = new Set<Entry>();
  private readonly byAddress = new Map<string, Set<Entry>>();

  get size(): number {
    return this.all.size;
  }

  add(e: Entry): void {
    this.all.add(e);
    let a = this.byAddress.get(e.address);
    if (!a) this.byAddress.set(e.address, (a = new Set()));
    a.add(e);
  }

  delete(e: Entry): void {
    this.all.delete(e);
    const a = this.byAddress.get(e.address);
    if (!a) return;
    a.delete(e);
    if (a.size === 0) this.byAddress.delete(e.address);
  }

  /** The oldest entry of `address` when it has more than `max`. */
  overAddress(address: string, max: number): Entry | undefined {
    const a = this.byAddress.get(address);
    return a && a.size > max ? a.values().next().value : undefined;
  }

  /** The oldest entry overall when there are more than `max`. */
  overTotal(max: number): Entry | undefined {
    return this.all.size > max ? this.all.values().next().value : undefined;
  }
}

export class ConnectionGuard {
  private readonly lists: Record<Kind, AgeList> = { 'half-open': new AgeList(), idle: new AgeList() };
  /** Entry by connection ("address:port" of the peer is unique while the connection is open). */
  private readonly entries = new Map<string, Entry>();
  private lastWarning = 0;
  /** Connections closed because a bound was reached or the handshake took too long (since start). */
  closed = { bound: 0, handshakeTimeout: 0 };

  constructor(
    private readonly bounds: () => ConnectionBounds,
    private readonly log: Logger,
  ) {}

  /** Watches every connection of `server` (call before it accepts any). */
  install(server: Server, tls: boolean): void {
    server.on('connection', (raw: Socket) => this.accepted(raw, tls));
    if (tls) server.on('secureConnection', (s: Socket) => this.move(s, 'idle'));
    server.on('request', (req: { socket: Socket }, res: { once(e: string, f: () => void): void }) => {
      const socket = req.socket;
      this.move(socket, undefined);
      res.once('finish', () => {
        if (!socket.destroyed) this.move(socket, 'idle');
      });
    });
  }

  /** Has this connection completed its TLS handshake (or is it plain)? */
  halfOpen(socket: Socket): boolean {
    return this.entries.get(keyOf(socket))?.kind === 'half-open';
  }

  /** Open connections of each kind, for tests and metrics. */
  counts(): Record<Kind, number> {
    return { 'half-open': this.lists['half-open'].size, idle: this.lists.idle.size };
  }

  private accepted(raw: Socket, tls: boolean): void {
    const key = keyOf(raw);
    const e: Entry = { raw, address: raw.remoteAddress ?? 'unknown' };
    this.entries.set(key, e);
    raw.once('close', () => {
      this.setKind(e, undefined);
      if (this.entries.get(key) === e) this.entries.delete(key);
    });
    if (tls) {
      e.timer = setTimeout(() => {
        if (e.kind !== 'half-open') return;
        this.closed.handshakeTimeout++;
        raw.destroy();
      }, this.bounds().handshakeTimeoutMs);
      e.timer.unref();
    }
    this.setKind(e, tls ? 'half-open' : 'idle');
  }

  private move(socket: Socket, kind: Kind | undefined): void {
    const e = this.entries.get(keyOf(socket));
    if (e && !e.raw.destroyed) this.setKind(e, kind);
  }

  private setKind(e: Entry, kind: Kind | undefined): void {
    if (e.kind === kind) return;
    if (e.kind) this.lists[e.kind].delete(e);
    if (e.kind === 'half-open' && e.timer) clearTimeout(e.timer);
    e.kind = kind;
    if (!kind) return;
    const list = this.lists[kind];
    list.add(e);
    const b = this.bounds();
    const [perAddress, total] =
      kind === 'half-open' ? [b.maxHalfOpenPerAddress, b.maxHalfOpen] : [b.maxIdlePerAddress, b.maxIdle];
    const victim = list.overAddress(e.address, perAddress) ?? list.overTotal(total);
    if (victim) this.evict(victim, kind);
  }

  private evict(victim: Entry, kind: Kind): void {
    this.setKind(victim, undefined);
    this.closed.bound++;
    victim.raw.destroy();
    const now = Date.now();
    if (now - this.lastWarning > 10_000) {
      this.lastWarning = now;
      this.log.warn(`too many ${kind} connections: closing the oldest`, {
        from: victim.address,
        ...this.counts(),
        closedSinceStart: this.closed.bound,
      });
    }
  }
}

function keyOf(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}`;
}
