/**
 * Raw-socket helpers for the connection tests: idle TCP connections held against a server (a
 * flood of peers that never send a ClientHello), and the kernel's view of a server port's sockets.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

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
