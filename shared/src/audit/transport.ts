/**
 * Connections to the Audit Record Repository: RFC 5425 (syslog over mutually authenticated TLS,
 * octet-counting framing), RELP over the same mutually authenticated TLS (relp.ts: every record
 * acknowledged by the receiver) and RFC 5426 (syslog over UDP, one message per datagram).
 */
import * as dgram from 'node:dgram';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { frameOctetCounted } from './syslog';

/** AEAD-only suites: TLS 1.3 (always AEAD) plus ECDHE + GCM/ChaCha20-Poly1305 for TLS 1.2 (BCP 195). */
export const DEFAULT_AUDIT_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

export interface AuditTlsOptions {
  /** Client certificate chain (PEM) presented to the ARR (ATNA node authentication). */
  cert: string | Buffer;
  key: string | Buffer;
  /** Trust anchors for the ARR's certificate (PEM). */
  ca: string | Buffer | (string | Buffer)[];
  /** Name the ARR certificate must carry (SNI and hostname check); default: the host. */
  servername?: string;
  /** OpenSSL cipher list; default DEFAULT_AUDIT_CIPHERS (AEAD only). */
  ciphers?: string;
  /** Default 'TLSv1.2'. */
  minVersion?: tls.SecureVersion;
  /** Handshake timeout, ms. Default 10 000. */
  handshakeTimeoutMs?: number;
}

/**
 * What a transport can prove about delivery:
 *  - `ack`: the receiver acknowledged each record (RELP): `write`'s callback means delivered;
 *  - `close`: nothing per record (RFC 5425 has no application acknowledgement; the kernel accepting
 *    bytes says nothing about the receiver reading them). Only a clean close after our
 *    end-of-stream proves that the receiver read everything sent on the connection (`end()`);
 *  - `none`: sent is all there is (UDP).
 */
export type Confirmation = 'ack' | 'close' | 'none';

/** A connected transport. */
export interface AuditConnection {
  readonly kind: 'tls' | 'relp' | 'udp';
  readonly confirmation: Confirmation;
  /**
   * Sends one record; `done` is called once it is handed to the kernel (`close`, `none`) or
   * acknowledged by the receiver (`ack`). Returns false when the caller should wait for
   * `drained()` before writing more.
   */
  write(message: Buffer, done: () => void): boolean;
  drained(): Promise<void>;
  /** Registered once: called when the connection is gone (with the error when there is one). */
  onClose(cb: (err?: Error) => void): void;
  /**
   * Graceful shutdown: half-closes and waits for the peer to close its side, which proves it has
   * read everything sent. Resolves true when that happened within the timeout.
   */
  end(timeoutMs: number): Promise<boolean>;
  destroy(): void;
  /** Peer certificate subject (TLS), for logs. */
  peer?: string;
}

export async function connectTls(
  host: string,
  port: number,
  opts: AuditTlsOptions,
): Promise<AuditConnection> {
  return new TlsConnection(await openTls(host, port, opts));
}

/** A mutually authenticated TLS connection to the ARR (certificate and name always verified). */
export function openTls(host: string, port: number, opts: AuditTlsOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      cert: opts.cert,
      key: opts.key,
      ca: opts.ca,
      servername: opts.servername ?? (isIP(host) ? undefined : host),
      minVersion: opts.minVersion ?? 'TLSv1.2',
      ciphers: opts.ciphers ?? DEFAULT_AUDIT_CIPHERS,
      // Never relaxed: the ARR must present a certificate chaining to `ca` for the expected name.
      rejectUnauthorized: true,
    });
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new Error(`TLS handshake with ${host}:${port} timed out`));
    }, opts.handshakeTimeoutMs ?? 10_000);
    socket.once('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.once('secureConnect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!socket.authorized) {
        socket.destroy();
        reject(socket.authorizationError ?? new Error('ARR certificate not authorized'));
        return;
      }
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    });
  });
}

/** Resolves when the socket can take more (drained) or is gone. */
export function socketDrained(socket: tls.TLSSocket): Promise<void> {
  if (socket.destroyed || !socket.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Subject of the ARR's certificate, for logs. */
export function peerSubject(socket: tls.TLSSocket): string | undefined {
  const subject = socket.getPeerCertificate()?.subject;
  if (!subject) return undefined;
  return Object.entries(subject)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
}

class TlsConnection implements AuditConnection {
  readonly kind = 'tls' as const;
  readonly confirmation = 'close' as const;
  readonly peer?: string;
  private closeCb?: (err?: Error) => void;
  private closed = false;
  private lastError?: Error;
  private peerEnded = false;

  constructor(private readonly socket: tls.TLSSocket) {
    this.peer = peerSubject(socket);
    socket.on('error', (err) => {
      this.lastError = err;
    });
    socket.on('end', () => {
      this.peerEnded = true;
    });
    // Syslog receivers send nothing; anything read is ignored (but must be consumed).
    socket.on('data', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.closeCb?.(
        this.lastError ?? (this.peerEnded ? new Error('connection closed by the ARR') : undefined),
      );
    });
  }

  write(message: Buffer, flushed: () => void): boolean {
    if (this.closed || this.socket.destroyed) return false;
    return this.socket.write(frameOctetCounted(message), (err) => {
      if (!err) flushed();
    });
  }

  drained(): Promise<void> {
    return socketDrained(this.socket);
  }

  onClose(cb: (err?: Error) => void): void {
    this.closeCb = cb;
    if (this.closed) cb(this.lastError);
  }

  end(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve(false);
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(this.peerEnded && !this.lastError);
      });
      this.socket.end();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** RFC 5426: IPv4 datagrams above this cannot be sent at all. */
export const MAX_UDP_PAYLOAD = 65_507;

export function connectUdp(host: string, port: number): Promise<AuditConnection> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.connect(port, host, () => {
      socket.off('error', reject);
      resolve(new UdpConnection(socket));
    });
  });
}

class UdpConnection implements AuditConnection {
  readonly kind = 'udp' as const;
  readonly confirmation = 'none' as const;
  private closeCb?: (err?: Error) => void;
  private closed = false;

  constructor(private readonly socket: dgram.Socket) {
    socket.on('error', (err) => {
      // ICMP port unreachable etc.: report and let the sender reconnect.
      if (!this.closed) {
        this.closed = true;
        socket.close();
        this.closeCb?.(err);
      }
    });
  }

  write(message: Buffer, flushed: () => void): boolean {
    if (this.closed) return false;
    this.socket.send(message, (err) => {
      if (!err) flushed();
    });
    return true;
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  onClose(cb: (err?: Error) => void): void {
    this.closeCb = cb;
  }

  end(): Promise<boolean> {
    this.destroy();
    return Promise.resolve(true);
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close();
    } catch {
      // already closed
    }
    this.closeCb?.();
  }
}
