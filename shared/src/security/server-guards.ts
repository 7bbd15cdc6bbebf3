/**
 * What the SOAP server does before there is a request: TLS handshake failures are audited as node
 * authentication failures, HTTP-level garbage (oversized or malformed headers, header/request
 * timeouts) is answered with a SOAP fault instead of a bare status line, half-open and idle
 * connections are bounded (connection-guard.ts), open connections are counted per peer, and the
 * header / whole-request timeouts come from `inboundLimits`.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { auditNodeAuthenticationFailure } from '../audit/gateway';
import type { AuditSink } from '../audit/event';
import type { InboundLimits } from '../directory/types';
import { encodeFault, SoapFault } from '../soap/fault';
import type { Logger } from '../util/log';
import { subjectString } from './certificates';
import type { PeerIdentities } from './identities';
import { ConnectionGuard } from './connection-guard';
import { type PeerLimiter } from './peer-limits';

/**
 * Records at most one audit event per key and interval; the next one says how many were left out.
 * Bounded: at most `maxKeys` keys are remembered.
 */
export class AuditThrottle {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly intervalMs = 10_000,
    private readonly maxKeys = 1_000,
  ) {}

  /** undefined: leave this one out; else the number of events left out before it. */
  pass(key: string): number | undefined {
    const now = Date.now();
    const s = this.seen.get(key);
    if (s && now - s.at < this.intervalMs) {
      s.suppressed++;
      return undefined;
    }
    const suppressed = s?.suppressed ?? 0;
    this.seen.delete(key);
    if (this.seen.size >= this.maxKeys) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.set(key, { at: now, suppressed: 0 });
    return suppressed;
  }
}

export interface ServerGuardOptions {
  limits: InboundLimits;
  identities: PeerIdentities;
  limiter: PeerLimiter;
  audit: AuditSink;
  log: Logger;
  throttle: AuditThrottle;
  tls: boolean;
}

/** Handshake errors that are not about who the peer is (it went away, was too slow). */
function notAuthentication(err: NodeJS.ErrnoException): boolean {
  return (
    err.code === 'ECONNRESET' ||
    err.code === 'EPIPE' ||
    err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ||
    err.code === 'ETIMEDOUT' ||
    /socket hang up|ECONNRESET/i.test(err.message)
  );
}

/** How long a fault answer to a malformed request may take to leave before the socket is destroyed. */
const FAULT_FLUSH_MS = 2_000;

export function installServerGuards(server: Server, o: ServerGuardOptions): ConnectionGuard {
  const log = o.log.child({ component: 'server-guards' });
  const guard = new ConnectionGuard(() => o.limits, log);
  guard.install(server, o.tls);
  server.headersTimeout = o.limits.headersTimeoutMs;
  // Node's requestTimeout would bound every request, including a multi-gigabyte asynchronous
  // answer streaming into /async-response. The SOAP endpoints get their own total bound instead
  // (peer-limits.ts); the async receiver bounds pauses of its sender.
  server.requestTimeout = 0;

  if (o.tls) {
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const address = socket.remoteAddress ?? 'unknown';
      if (notAuthentication(err)) {
        log.debug('TLS handshake not completed', { from: address, reason: err.code ?? err.message });
        return;
      }
      let subject: string | undefined;
      try {
        const cert = socket.getPeerCertificate?.();
        if (cert && Object.keys(cert).length > 0) subject = subjectString(cert);
      } catch {
        // no certificate to name
      }
      const left = o.throttle.pass(`in:${address}`);
      log.warn('TLS handshake refused', { from: address, subject, reason: err.code ?? err.message });
      if (left === undefined) return;
      auditNodeAuthenticationFailure(o.audit, {
        remoteAddress: address,
        remotePort: socket.remotePort,
        certificateSubject: subject,
        reason:
          `TLS handshake refused: ${err.code ?? ''} ${err.message}`.trim() +
          (left > 0 ? ` (${left} similar failures from this address not recorded)` : ''),
      });
    });
  }

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // The HTTPS server reports TLS handshake errors (and handshake timeouts) here as well. Nothing
    // can be written on a connection whose handshake never finished — a write would wait for it
    // forever and the connection would never close — so it is destroyed (after the tlsClientError
    // listener above has read the peer's certificate for the audit record).
    if (o.tls && guard.halfOpen(socket)) {
      process.nextTick(() => socket.destroy());
      return;
    }
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, text, reason] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'request headers too large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'request not received in time']
          : [400, 'Bad Request', `malformed HTTP request (${err.code ?? 'parse error'})`];
    log.info('malformed HTTP request refused', {
      from: socket.remoteAddress,
      reason: err.code ?? err.message,
    });
    const body = encodeFault(SoapFault.sender(reason));
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
    // A peer that does not read the answer does not keep the connection.
    setTimeout(() => socket.destroy(), FAULT_FLUSH_MS).unref();
  });

  // Connections per peer (after the handshake, when the peer's certificate is known).
  server.on(o.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    // The identity of a connection is read once; a TLS 1.2 renegotiation must not change it.
    if (o.tls) (socket as TLSSocket).disableRenegotiation?.();
    const { key, limits } = o.identities.socketPeer(socket);
    const release = o.limiter.openConnection(key, { ...o.limits, ...limits });
    if (!release) {
      if (o.limiter.shouldLog(key, 10_000))
        log.warn('connection refused: too many from this peer', { peer: key });
      socket.destroy();
      return;
    }
    socket.once('close', release);
  });
  return guard;
}
