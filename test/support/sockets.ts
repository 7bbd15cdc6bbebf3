/**
 * Raw-socket helpers for the connection tests: idle TCP connections held against a server (a
 * flood of peers that never send a ClientHello), and the kernel's view of a server port's sockets.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

/** The server-side sockets of local TCP port `port` by state (Linux /proc/net/tcp; IPv4). */
export function serverSocketStates(port: number): Record<string, number> {
  const out: Record<string, number> = {};
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !f[1].endsWith(`:${hexPort}`)) continue;
    const state = TCP_STATES[f[3]] ?? f[3];
    out[state] = (out[state] ?? 0) + 1;
  }
  return out;
}

/** Server-side connections of `port` the server still holds (not listening, not TIME_WAIT / closed). */
export function serverConnectionsHeld(port: number): number {
  const s = serverSocketStates(port);
  return Object.entries(s)
    .filter(([k]) => !['LISTEN', 'TIME_WAIT', 'CLOSE'].includes(k))
    .reduce((n, [, v]) => n + v, 0);
}

/** The soft limit on open files of this process (Node raises it to the hard limit at start). */
export function openFilesLimit(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

export interface IdleFlood {
  /** Connections the server accepted (TCP handshake completed). */
  readonly connected: number;
  /** Connections the server has closed (or refused) so far. */
  readonly closed: number;
  /** Connections still open from our side. */
  readonly open: number;
  /** How many were closed in each second since the first connect (seconds → count). */
  readonly closedAt: Record<number, number>;
  /** Closes every connection (the attacker goes away). */
  close(): void;
}

/**
 * Opens `n` TCP connections to host:port from `localAddress` and never sends a byte on them.
 * Resolves once every connection attempt has settled (connected or failed).
 */
export async function idleConnections(
  host: string,
  port: number,
  n: number,
  localAddress?: string,
): Promise<IdleFlood> {
  const sockets: Socket[] = [];
  let connected = 0;
  let closed = 0;
  const t0 = Date.now();
  const closedAt: Record<number, number> = {};
  await Promise.all(
    Array.from({ length: n }, () => {
      const s = connect({ host, port, localAddress });
      sockets.push(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        closed++;
        const sec = Math.floor((Date.now() - t0) / 1000);
        closedAt[sec] = (closedAt[sec] ?? 0) + 1;
      });
      return new Promise<void>((resolve) => {
        s.once('connect', () => {
          connected++;
          resolve();
        });
        s.once('close', () => resolve());
      });
    }),
  );
  return {
    get connected() {
      return connected;
    },
    get closed() {
      return closed;
    },
    closedAt,
    get open() {
      return sockets.length - closed;
    },
    close: () => sockets.forEach((s) => s.destroy()),
  };
}

export interface RawExchange {
  /** HTTP status of the answer, if one came. */
  status?: number;
  /** Body bytes written before the exchange ended. */
  sent: number;
  /** When the server answered or closed, ms after the request started. */
  endedAfterMs: number;
  /** The answer as text (head and body), as far as it came. */
  text: string;
}

/**
 * POSTs over a raw TCP connection: the request head, then the body as `chunks` yields it (one
 * chunk after another with backpressure, `delayMs` apart). Ends when the server answers and closes,
 * closes, or `maxMs` passed (then we close). For slow and oversized senders.
 */
export function rawPost(
  host: string,
  port: number,
  path: string,
  headers: Record<string, string>,
  chunks: Iterable<Buffer>,
  o: {
    delayMs?: number;
    maxMs?: number;
    localAddress?: string;
    /** Over TLS with these options (e.g. a client certificate), else plain TCP. */
    tls?: ConnectionOptions;
  } = {},
): Promise<RawExchange> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = o.tls
      ? tlsConnect({ host, port, ...o.tls })
      : connect({ host, port, localAddress: o.localAddress });
    let sent = 0;
    let text = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(cap);
      s.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : undefined, sent, endedAfterMs: Date.now() - t0, text });
    };
    const cap = setTimeout(finish, o.maxMs ?? 30_000);
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      // A complete answer with Content-Length: done when its body is in.
      const head = text.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, head))?.[1];
      if (head >= 0 && len !== undefined && text.length >= head + 4 + Number(len)) finish();
    });
    s.on('error', () => finish());
    s.on('close', () => finish());
    s.once(o.tls ? 'secureConnect' : 'connect', () => {
      const head =
        `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
        Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('') +
        '\r\n';
      s.write(head);
      const it = chunks[Symbol.iterator]();
      const pump = () => {
        while (!done) {
          const n = it.next();
          if (n.done) return;
          sent += n.value.length;
          const more = s.write(n.value);
          if (o.delayMs) return void setTimeout(pump, o.delayMs);
          if (!more) return void s.once('drain', pump);
        }
      };
      pump();
    });
  });
}

/** An IPv4 address:port of /proc/net/tcp ("0100007F:1F90") as "127.0.0.1:8080". */
function procAddress(hex: string): string {
  const [a, p] = hex.split(':');
  const ip = [3, 2, 1, 0].map((k) => parseInt(a.slice(k * 2, k * 2 + 2), 16)).join('.');
  return `${ip}:${parseInt(p, 16)}`;
}

/**
 * The TCP sockets process `pid` holds (its file descriptors matched against /proc/net/tcp; IPv4):
 * how many in all, and the established ones by remote address ("127.0.0.1:8080").
 */
export function processSockets(pid: number): { total: number; byRemote: Map<string, number> } {
  const inodes = new Set<string>();
  let total = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) {
      inodes.add(m[1]);
      total++;
    }
  }
  const byRemote = new Map<string, number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !inodes.has(f[9]) || f[3] !== '01') continue;
    const remote = procAddress(f[2]);
    byRemote.set(remote, (byRemote.get(remote) ?? 0) + 1);
  }
  return { total, byRemote };
}
