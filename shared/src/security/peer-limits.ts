/**
 * Per-peer limits on the inbound side: request rate (token bucket), requests in flight, open
 * connections, request size, and a pause limit between body bytes. A peer is the community or
 * consumer the caller's certificate maps to, else its certificate, else its address (identities.ts
 * `peerKey`), so one noisy community uses up its own allowance, not the others'.
 *
 * State is one small record per peer, kept for at most `maxTrackedPeers` peers: beyond that the
 * least recently seen idle peers are forgotten (their bucket starts full again).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { InboundLimits, PeerLimits } from '../directory/types';
import type { Caller } from '../pipeline/transaction';
import { encodeFault, SoapFault } from '../soap/fault';
import type { Logger } from '../util/log';
import { peerKey, type PeerIdentities } from './identities';

interface PeerState {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
  inflight: number;
  connections: number;
  /** Last time a refusal was logged (ms), to log at most one per peer and interval. */
  logged: number;
}

export type Refusal = 'rate' | 'concurrency';

export class PeerLimiter {
  private readonly peers = new Map<string, PeerState>();

  constructor(private readonly maxTracked: number) {}

  get tracked(): number {
    return this.peers.size;
  }

  private state(key: string, limits: PeerLimits): PeerState {
    let s = this.peers.get(key);
    if (s) {
      this.peers.delete(key); // re-insert: the map's order is "least recently seen first"
    } else {
      s = { tokens: limits.burst, at: Date.now(), inflight: 0, connections: 0, logged: 0 };
      if (this.peers.size >= this.maxTracked) this.evict();
    }
    this.peers.set(key, s);
    return s;
  }

  private evict(): void {
    for (const [k, s] of this.peers) {
      if (this.peers.size < this.maxTracked) return;
      if (s.inflight === 0 && s.connections === 0) this.peers.delete(k);
    }
  }

  /** Takes one request token; false when the peer is above its rate. */
  take(key: string, limits: PeerLimits): boolean {
    const s = this.state(key, limits);
    const now = Date.now();
    s.tokens = Math.min(limits.burst, s.tokens + ((now - s.at) / 1000) * limits.requestsPerSecond);
    s.at = now;
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  }

  /** Starts a request; returns its release, or undefined when the peer has too many in flight. */
  startRequest(key: string, limits: PeerLimits): (() => void) | undefined {
    const s = this.state(key, limits);
    if (s.inflight >= limits.maxConcurrentRequests) return undefined;
    s.inflight++;
    return once(() => s.inflight--);
  }

  /** Registers an open connection; undefined when the peer has too many. */
  openConnection(key: string, limits: PeerLimits): (() => void) | undefined {
    const s = this.state(key, limits);
    if (s.connections >= limits.maxConnections) return undefined;
    s.connections++;
    return once(() => s.connections--);
  }

  /** True at most once per `intervalMs` per peer (for logging refusals without flooding the log). */
  shouldLog(key: string, intervalMs: number): boolean {
    const s = this.peers.get(key);
    if (!s) return true;
    const now = Date.now();
    if (now - s.logged < intervalMs) return false;
    s.logged = now;
    return true;
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      f();
    }
  };
}

/** The limits that apply to a caller: the defaults, overridden by its community's or consumer's. */
export function limitsFor(
  caller: Caller,
  defaults: InboundLimits,
  maxRequestBytes: number,
): Required<PeerLimits> {
  const own = (caller.community ?? caller.consumer)?.inboundLimits ?? {};
  return {
    maxConcurrentRequests: own.maxConcurrentRequests ?? defaults.maxConcurrentRequests,
    requestsPerSecond: own.requestsPerSecond ?? defaults.requestsPerSecond,
    burst: own.burst ?? defaults.burst,
    maxConnections: own.maxConnections ?? defaults.maxConnections,
    maxRequestBytes: own.maxRequestBytes ?? defaults.maxRequestBytes ?? maxRequestBytes,
  };
}

export interface PeerLimitsOptions {
  identities: PeerIdentities;
  limiter: PeerLimiter;
  defaults: InboundLimits;
  /** The process-wide request limit (XCAI_MAX_REQUEST_BYTES). */
  maxRequestBytes: number;
  /** Paths of the SOAP transaction endpoints (in-flight, size and body-pause limits apply there). */
  soapPaths: ReadonlySet<string>;
  log: Logger;
}

const SOAP_XML = 'application/soap+xml; charset=UTF-8';

/** Refuses a request with a SOAP fault without reading its body (the connection is closed). */
export function refuseRequest(
  res: ServerResponse,
  status: number,
  fault: SoapFault,
  retryAfterS?: number,
): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = { 'content-type': SOAP_XML, connection: 'close' };
  if (retryAfterS !== undefined) headers['retry-after'] = String(retryAfterS);
  res.writeHead(status, headers).end(encodeFault(fault));
}

/**
 * Express middleware, mounted before every route: identifies the caller (identities.ts) and applies
 * its limits. Refusals: HTTP 429 + Retry-After (rate, in flight), 413 (declared size), 408 (body
 * pauses longer than bodyIdleTimeoutMs), each with a SOAP fault.
 */
export function peerLimitsMiddleware(o: PeerLimitsOptions): RequestHandler {
  const log = o.log.child({ component: 'peer-limits' });
  const refused = (key: string, what: string, caller: Caller) => {
    if (o.limiter.shouldLog(key, 10_000))
      log.warn('request refused by a per-peer limit', { peer: key, limit: what, from: caller.remoteAddress });
  };
  return (req, res, next) => {
    const caller = o.identities.identify(req);
    const key = peerKey(caller);
    const limits = limitsFor(caller, o.defaults, o.maxRequestBytes);
    if (!o.limiter.take(key, limits)) {
      refused(key, 'rate', caller);
      return refuseRequest(
        res,
        429,
        SoapFault.receiver('too many requests from this peer (rate limit); retry later'),
        Math.max(1, Math.ceil(1 / limits.requestsPerSecond)),
      );
    }
    if (req.method !== 'POST' || !o.soapPaths.has(req.path)) return next();
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > 2 * limits.maxRequestBytes) {
      refused(key, 'size', caller);
      return refuseRequest(
        res,
        413,
        SoapFault.sender(`request too large: more than ${limits.maxRequestBytes} bytes`),
      );
    }
    caller.maxRequestBytes = limits.maxRequestBytes;
    const release = o.limiter.startRequest(key, limits);
    if (!release) {
      refused(key, 'concurrency', caller);
      return refuseRequest(
        res,
        429,
        SoapFault.receiver('too many concurrent requests from this peer; retry later'),
        1,
      );
    }
    res.once('close', release);
    watchTotalTime(req, res, o.defaults.requestTimeoutMs, () => {
      refused(key, 'request time', caller);
      if (res.headersSent) return void req.socket.destroy();
      res.once('finish', () => req.socket.destroy());
      refuseRequest(res, 408, SoapFault.sender('request not received in time'));
    });
    watchBodyPauses(req, res, o.defaults.bodyIdleTimeoutMs, () => {
      refused(key, 'body pause', caller);
      if (res.headersSent) return void req.socket.destroy();
      res.once('finish', () => req.socket.destroy());
      refuseRequest(res, 408, SoapFault.sender('request body not received in time'));
    });
    next();
  };
}

/** Calls `onLate` when the request is still incomplete `ms` after it started (the whole request bound). */
function watchTotalTime(req: IncomingMessage, res: ServerResponse, ms: number, onLate: () => void): void {
  if (req.complete) return;
  const timer = setTimeout(() => {
    if (!req.complete && !req.destroyed && !res.writableEnded) onLate();
  }, ms);
  timer.unref();
  const stop = () => clearTimeout(timer);
  req.once('end', stop);
  res.once('close', stop);
}

/**
 * Calls `onIdle` when no byte of the request arrived for `idleMs` while its body is incomplete.
 * Only for requests the handler reads at once (the SOAP endpoints read the whole request before
 * working on it, so a pause is the sender's).
 */
function watchBodyPauses(
  req: IncomingMessage,
  res: ServerResponse,
  idleMs: number,
  onIdle: () => void,
): void {
  if (req.complete) return;
  let last = req.socket.bytesRead;
  let quietSince = Date.now();
  const timer = setInterval(
    () => {
      if (req.complete || req.destroyed || res.writableEnded) return stop();
      const n = req.socket.bytesRead;
      if (n !== last) {
        last = n;
        quietSince = Date.now();
        return;
      }
      if (Date.now() - quietSince >= idleMs) {
        stop();
        onIdle();
      }
    },
    Math.max(20, Math.min(1000, Math.floor(idleMs / 4))),
  );
  timer.unref();
  const stop = () => clearInterval(timer);
  req.once('end', stop);
  res.once('close', stop);
}
