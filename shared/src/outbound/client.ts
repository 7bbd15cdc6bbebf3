import { Readable } from 'node:stream';
import {
  checkServerIdentity,
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import type { RevocationChecker } from '../security/revocation/checker';
import { revocationConnector } from '../security/revocation/outbound';
import type { Endpoint, PeerIdentity } from '../directory/types';
import { certificateNames } from '../security/certificates';
import { Semaphore } from '../util/semaphore';

/** Why an outbound call failed; the transaction turns this into a RegistryError. */
export type CallFailureKind =
  | 'refused'
  | 'timeout'
  | 'too-large'
  | 'http-status'
  | 'fault'
  | 'bad-response'
  | 'aborted'
  | 'egress-denied'
  | 'busy'
  /** Not sent: the community's circuit breaker is open (see circuit/breaker.ts). */
  | 'circuit-open';

export class CallFailure extends Error {
  constructor(
    readonly kind: CallFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'CallFailure';
  }
}

export interface OutboundResponse {
  status: number;
  contentType: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  /** Counted against the endpoint's maxResponseBytes; errors with CallFailure('too-large') past it. */
  body: Readable;
}

export interface TlsClientOptions {
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Trust anchors; when absent Node's default CA store is used. Verification is always on. */
  ca?: (string | Buffer)[];
  ciphers?: string;
  /** Lowest TLS version (never below 1.2). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * The peer's certificate must also carry one of these names (CN or subjectAltName), on top of
   * the usual host name check (per-community identity, see security/peer-tls.ts).
   */
  serverNames?: readonly string[];
  /**
   * Replica to replica (async hand-over): replicas are reached by pod address, which their shared
   * certificate does not name. Instead of the host name check, the certificate (still verified
   * against our trust anchors) must carry one of these names — our own certificate's.
   */
  sameIdentityAs?: readonly string[];
  /** Checks the server's verified chain for revocation before the request is sent (R5). */
  revocation?: RevocationChecker;
}

/** Per-peer TLS and handshake-failure reporting (security/peer-tls.ts provides them). */
export interface OutboundPeers {
  /** The TLS profile for a URL (a community's endpoint) or a peer identity (an async ReplyTo). */
  tlsFor?(url: string, identity?: PeerIdentity): TlsClientOptions | undefined;
  /** Called when a TLS handshake with a peer failed (certificate refused either way). */
  onTlsFailure?(url: string, failure: CallFailure): void;
}

/** AEAD-only suites for TLS 1.2; TLS 1.3 suites are AEAD by definition. */
export const DEFAULT_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_AES_128_GCM_SHA256',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface PostOptions {
  endpoint: Endpoint;
  contentType: string;
  body: string | Buffer | Readable;
  /** Extra request headers (e.g. traceparent). */
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** Time allowed until the response headers arrive. */
  headersTimeoutMs: number;
  /** Idle time allowed between body chunks. */
  bodyIdleTimeoutMs?: number;
  /** Trust anchors specific to this peer (per-community trust); default: the client's own. */
  tlsProfile?: TlsClientOptions;
  /** The identity the peer must prove (e.g. the requester's, for an async ReplyTo); see OutboundPeers. */
  peerIdentity?: PeerIdentity;
  /** A connection slot already reserved with `reserve`; otherwise one is taken here. */
  slot?: () => void;
  /**
   * Lets this one request go to a URL the directory does not name as an endpoint but allows for
   * the requester at hand (an async ReplyTo, see async/reply-to.ts; a replica hand-over).
   */
  permit?: (url: string) => boolean;
}

/**
 * Every outbound HTTP request goes through here. It refuses any URL the directory does not name
 * (`isAllowed`), so nothing in a message can make the gateway connect elsewhere.
 */
export class Outbound {
  private agents = new Map<string, Agent>();
  /** The agent of each TLS profile object (profiles are reused per peer identity). */
  private byProfile = new WeakMap<TlsClientOptions, Agent>();
  /**
   * One TLS context per trust anchors / ciphers / version, shared by every agent and connection:
   * otherwise each new connection parses our key, certificate and the CAs again (milliseconds per
   * handshake, hundreds of handshakes in a national fan-out).
   */
  private contexts = new Map<string, SecureContext>();
  private readonly limits = new Map<string, Semaphore>();

  constructor(
    private tls: TlsClientOptions,
    private readonly isAllowed: (url: string) => boolean,
    private readonly peers: OutboundPeers = {},
  ) {}

  /**
   * New client TLS material (certificate rotation): new connections use it; connections in use
   * finish what they carry — the previous agents are closed gracefully (requests in flight and
   * queued complete, then their sockets close).
   */
  setTls(tls: TlsClientOptions): void {
    this.tls = tls;
    const old = this.agents;
    this.agents = new Map();
    this.byProfile = new WeakMap();
    this.contexts = new Map();
    for (const a of old.values()) void a.close().catch(() => undefined);
  }

  private agent(profile?: TlsClientOptions): Dispatcher {
    const known = profile && this.byProfile.get(profile);
    if (known) return known;
    const opts = { ...this.tls, ...profile };
    const contextKey = JSON.stringify([opts.ca?.map(String), opts.ciphers, opts.minVersion]);
    const key = JSON.stringify([
      contextKey,
      opts.serverNames,
      opts.sameIdentityAs,
      opts.revocation !== undefined,
    ]);
    let a = this.agents.get(key);
    if (!a) {
      const minVersion = opts.minVersion === 'TLSv1.3' ? ('TLSv1.3' as const) : ('TLSv1.2' as const);
      const ciphers = opts.ciphers ?? DEFAULT_CIPHERS;
      let secureContext = this.contexts.get(contextKey);
      if (!secureContext) {
        secureContext = createSecureContext({
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          minVersion,
          ciphers,
        });
        this.contexts.set(contextKey, secureContext);
      }
      const connect = {
        secureContext,
        minVersion,
        ciphers,
        rejectUnauthorized: true,
        timeout: 10_000,
        ...(opts.sameIdentityAs
          ? { checkServerIdentity: sameIdentityCheck(opts.sameIdentityAs) }
          : opts.serverNames
            ? { checkServerIdentity: peerIdentityCheck(opts) }
            : {}),
      };
      a = new Agent({
        keepAliveTimeout: 30_000,
        connections: 256,
        connect: opts.revocation
          ? revocationConnector(sessionKeepingConnector(connect), opts.revocation)
          : sessionKeepingConnector(connect),
      });
      this.agents.set(key, a);
    }
    if (profile) this.byProfile.set(profile, a);
    return a;
  }

  private semaphore(endpoint: Endpoint): Semaphore {
    let s = this.limits.get(endpoint.url);
    if (!s || s.limit !== endpoint.maxConcurrent) {
      s = new Semaphore(endpoint.maxConcurrent);
      this.limits.set(endpoint.url, s);
    }
    return s;
  }

  /**
   * Reserves `n` of the endpoint's maxConcurrent request slots at once (see Semaphore). A slot is
   * held until the response body is consumed or dropped. A wait ends with `signal` or after
   * `waitMs` (when given); that timer is made only when there is a wait (a fan-out to 500
   * communities with free slots would otherwise leave 500 timers behind until they expire).
   */
  async reserve(
    endpoint: Endpoint,
    n: number,
    signal: AbortSignal,
    waitMs?: number,
  ): Promise<(() => void)[]> {
    const slots = this.semaphore(endpoint);
    const now = signal.aborted ? undefined : slots.tryAcquireMany(n);
    if (now) return now;
    const wait =
      waitMs === undefined ? signal : AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, waitMs))]);
    try {
      return await slots.acquireMany(n, wait);
    } catch {
      if (wait.reason instanceof CallFailure) throw wait.reason;
      throw new CallFailure(wait.aborted ? 'aborted' : 'busy', 'gave up waiting for a free connection slot');
    }
  }

  /** POSTs and resolves once the response headers are in; the body streams afterwards. */
  async post(o: PostOptions): Promise<OutboundResponse> {
    if (!this.isAllowed(o.endpoint.url) && !o.permit?.(o.endpoint.url)) {
      o.slot?.();
      throw new CallFailure('egress-denied', `no directory entry allows sending to ${o.endpoint.url}`);
    }
    const url = new URL(o.endpoint.url);
    const release = o.slot ?? (await this.reserve(o.endpoint, 1, o.signal))[0];
    let res: Dispatcher.ResponseData;
    try {
      const profile = o.tlsProfile ?? this.peers.tlsFor?.(o.endpoint.url, o.peerIdentity);
      res = await this.agent(profile).request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers: { 'content-type': o.contentType, ...o.headers },
        body: o.body,
        signal: o.signal,
        headersTimeout: Math.max(1, o.headersTimeoutMs),
        bodyTimeout: o.bodyIdleTimeoutMs ?? o.endpoint.timeoutMs,
      });
    } catch (e) {
      release();
      const failure = classify(e, o.signal);
      if (failure.message.startsWith('TLS failure')) this.peers.onTlsFailure?.(o.endpoint.url, failure);
      throw failure;
    }
    const limited = new ByteLimit(res.body, o.endpoint.maxResponseBytes);
    res.body.on('error', (e) => limited.destroy(classify(e, o.signal)));
    let released = false;
    const done = () => {
      if (!released) {
        released = true;
        release();
      }
    };
    limited.once('close', done);
    limited.once('end', done);
    limited.once('error', () => {
      done();
      res.body.destroy();
    });
    const ct = res.headers['content-type'];
    return {
      status: res.statusCode,
      contentType: Array.isArray(ct) ? ct[0] : ct,
      headers: res.headers,
      body: limited,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
  }
}

/** TLS sessions kept per agent (one TLS profile): enough for every endpoint of a national directory. */
const MAX_SESSIONS = 2048;

/**
 * Undici's connector holds TLS sessions only through weak references, so a full garbage collection
 * forgets them and the next connection to each of hundreds of peers is a full handshake (chain
 * verification, identity check). This one keeps the latest session of each host:port (and server
 * name) strongly, in the agent's own map: sessions never cross TLS profiles or ports.
 */
function sessionKeepingConnector(options: buildConnector.BuildOptions): buildConnector.connector {
  const sessions = new Map<string, Buffer>();
  const keep = (key: string, s: Buffer) => {
    sessions.delete(key);
    sessions.set(key, s);
    if (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
  };
  return (opts, callback) => {
    const key = `${opts.servername ?? ''}|${opts.hostname}:${opts.port}`;
    const connect = buildConnector({ ...options, session: sessions.get(key) });
    connect(opts, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no socket'), null);
      const tls = socket as TLSSocket;
      if (typeof tls.getSession === 'function') {
        const s = tls.getSession();
        if (s) keep(key, s);
        tls.on('session', (next: Buffer) => keep(key, next));
      }
      callback(null, socket);
    });
  };
}

/** A replica of ours: its certificate carries one of our own names (the chain is verified as always). */
function sameIdentityCheck(
  own: readonly string[],
): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const names = certificateNames(cert);
    if (names.some((n) => own.includes(n))) return undefined;
    const err = new Error(
      `certificate of ${host} (${names.join(', ') || 'no names'}) is not this gateway's identity`,
    ) as Error & {
      code?: string;
    };
    err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
    return err;
  };
}

/** The usual host name check, then: the certificate must carry one of `serverNames`. */
function peerIdentityCheck(
  opts: TlsClientOptions,
): (host: string, cert: PeerCertificate) => Error | undefined {
  const wanted = opts.serverNames ?? [];
  return (host, cert) => {
    const e = checkServerIdentity(host, cert);
    if (e) return e;
    const names = certificateNames(cert);
    if (names.some((n) => wanted.includes(n))) return undefined;
    const err = new Error(
      `certificate of ${host} (${names.join(', ') || 'no names'}) is not one of the peer's names: ${wanted.join(', ')}`,
    ) as Error & { code?: string };
    err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
    return err;
  };
}

/**
 * The response body, counted and failed past the limit (IHE XCA-I M3). A Readable fed from the
 * source's 'data' events, not a Transform behind pipe(): the body is read once per chunk, with no
 * writable side (and no write callbacks) in between. Backpressure pauses the source. Destroying
 * this stream stops reading; the source is left to the listeners of `post` (as pipe() would).
 */
export class ByteLimit extends Readable {
  bytes = 0;
  constructor(
    private readonly src: Readable,
    public limit: number,
  ) {
    super();
    src.on('data', this.onData);
    src.on('end', this.onEnd);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.detach();
      this.destroy(
        new CallFailure('too-large', `response larger than the configured maximum of ${this.limit} bytes`),
      );
      return;
    }
    if (!this.push(chunk)) this.src.pause();
  };

  private readonly onEnd = (): void => {
    this.detach();
    this.push(null);
  };

  private detach(): void {
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
  }

  override _read(): void {
    if (this.src.isPaused()) this.src.resume();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.detach();
    if (!this.src.destroyed && !this.src.readableEnded) this.src.pause();
    cb(err);
  }
}

function classify(e: unknown, signal: AbortSignal): CallFailure {
  if (e instanceof CallFailure) return e;
  const err = e as { code?: string; name?: string; message?: string };
  if (signal.aborted) {
    if (signal.reason instanceof CallFailure) return signal.reason;
    const r = signal.reason as { name?: string } | undefined;
    return r?.name === 'TimeoutError'
      ? new CallFailure('timeout', 'deadline reached')
      : new CallFailure('aborted', 'request cancelled');
  }
  switch (err.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new CallFailure('timeout', `no answer in time (${err.code})`);
    case 'ECONNREFUSED':
    case 'ECONNRESET':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'UND_ERR_SOCKET':
      return new CallFailure('refused', `cannot connect (${err.code})`);
    default:
      if (
        err.code?.startsWith('ERR_TLS') ||
        err.code?.includes('CERT') ||
        /certificate|handshake|ssl|tls/i.test(err.message ?? '')
      ) {
        return new CallFailure('refused', `TLS failure: ${err.message ?? err.code}`);
      }
      return new CallFailure('refused', err.message ?? String(e));
  }
}
