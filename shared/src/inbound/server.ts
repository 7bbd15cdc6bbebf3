import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { handleInbound, type AnyTransaction, type EngineHooks } from '../pipeline/engine';
import type { Caller, Gateway } from '../pipeline/transaction';
import { renderWsdl, WSDL_SPECS } from './wsdl';

export interface SoapRoute {
  path: string;
  tx: AnyTransaction;
}

export interface TlsServerOptions {
  /**
   * Certificate, key, CAs, protocol floor, ciphers: security/server-tls.ts
   * `serverSecureContextOptions` (the same function feeds `setSecureContext` on reload).
   */
  context: SecureContextOptions;
  /** required: every client presents a certificate our CAs issued; optional: verified when given. */
  clientAuth: 'required' | 'optional';
  /** Time allowed for a TLS handshake (default 10 s). */
  handshakeTimeoutMs?: number;
}

export interface ServerOptions {
  gateway: Gateway;
  routes: SoapRoute[];
  hooks?: EngineHooks;
  host: string;
  port: number;
  tls?: TlsServerOptions;
  /** Extra routes (e.g. the async response receiver), added before the SOAP routes. */
  extend?: (app: Express) => void;
}

export interface RunningServer {
  server: Server;
  /** Base URL, e.g. https://127.0.0.1:8443 */
  url: string;
  /**
   * Stops. With `drainMs`, first stops accepting connections and lets the requests under way finish
   * for at most that long (a rolling restart must not cut a study off mid-stream); then every
   * connection is closed.
   */
  close(drainMs?: number): Promise<void>;
}

const callers = new WeakMap<IncomingMessage, Caller>();

/**
 * Identity of the caller from the socket (address, verified client certificate). One Caller per
 * request: security/identities.ts adds the community / consumer it maps to before the routes run.
 */
export function callerOf(req: IncomingMessage): Caller {
  const known = callers.get(req);
  if (known) return known;
  const caller = readCaller(req);
  callers.set(req, caller);
  return caller;
}

function readCaller(req: IncomingMessage): Caller {
  const sock = req.socket as Partial<TLSSocket>;
  const caller: Caller = { remoteAddress: req.socket.remoteAddress ?? 'unknown' };
  if (sock.encrypted && sock.authorized && sock.getPeerCertificate) {
    const cert = sock.getPeerCertificate();
    if (cert && Object.keys(cert).length > 0) {
      const cn = cert.subject?.CN;
      const sans = (cert.subjectaltname ?? '')
        .split(',')
        .map((s) => s.trim().replace(/^(DNS|URI|IP Address):/, ''))
        .filter(Boolean);
      const subject = Object.entries(cert.subject ?? {})
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
        .join(',');
      caller.certificate = {
        subject,
        names: [...(cn ? [Array.isArray(cn) ? cn[0] : cn] : []), ...sans],
        fingerprint256: cert.fingerprint256,
      };
    }
  }
  return caller;
}

/** Starts the SOAP endpoints of a gateway. Servers bind where told; tests use 127.0.0.1 and port 0. */
export async function startSoapServer(o: ServerOptions): Promise<RunningServer> {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  o.extend?.(app);
  let baseUrl = '';
  for (const r of o.routes) {
    app.get(r.path, (req, res) => {
      if (!('wsdl' in req.query)) {
        res.status(405).type('text/plain').send('POST a SOAP 1.2 request, or GET ?wsdl\n');
        return;
      }
      const spec = WSDL_SPECS[r.tx.name];
      res.type('text/xml').send(renderWsdl(spec, `${o.gateway.publicUrl || baseUrl}${r.path}`));
    });
    app.post(r.path, (req, res) => {
      void handleInbound(r.tx, req, res, {
        gateway: o.gateway,
        endpointUrl: `${o.gateway.publicUrl || baseUrl}${r.path}`,
        caller: callerOf(req),
        hooks: o.hooks,
      });
    });
  }
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('no such endpoint\n');
  });
  const handler = app as unknown as (req: IncomingMessage, res: ServerResponse) => void;
  const server = o.tls
    ? createHttpsServer(
        {
          ...o.tls.context,
          requestCert: true,
          rejectUnauthorized: o.tls.clientAuth === 'required',
          handshakeTimeout: o.tls.handshakeTimeoutMs ?? 10_000,
        },
        handler,
      )
    : createHttpServer(handler);
  hardenServer(server);
  const inFlight = requestsInFlight(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue: a burst of connections (a flood, or many peers at once) is accepted and
    // then bounded by the connection guard, instead of overflowing the kernel's queue, where
    // connections the server never sees linger half-made on the peer's side.
    server.listen({ port: o.port, host: o.host, backlog: LISTEN_BACKLOG }, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  baseUrl = `${o.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  return {
    server,
    url: baseUrl,
    close: async (drainMs = 0) => {
      if (drainMs > 0) {
        server.close();
        server.closeIdleConnections();
        await inFlight.settled(drainMs);
      }
      await closeServer(server);
    },
  };
}

/** Counts the requests a server is answering; `settled(ms)` resolves when none is left, or after `ms`. */
function requestsInFlight(server: Server): { settled(ms: number): Promise<void> } {
  let n = 0;
  let idle: (() => void) | undefined;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    n++;
    res.once('close', () => {
      if (--n === 0) idle?.();
    });
  });
  return {
    settled: (ms) =>
      new Promise<void>((resolve) => {
        if (n === 0) return resolve();
        const t = setTimeout(done, ms);
        function done(): void {
          clearTimeout(t);
          idle = undefined;
          resolve();
        }
        idle = done;
      }),
  };
}

/** Listen backlog of the SOAP server (the kernel caps it at net.core.somaxconn). */
const LISTEN_BACKLOG = 4_096;

/** Bounds on slow or abusive clients (IHE XCA-I T3/T5). */
export function hardenServer(server: Server): void {
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  server.maxConnections = 2_000;
  // How often headersTimeout / requestTimeout are checked (Node's default, 30 s, lets slow senders linger).
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = 1_000;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export interface ManagementOptions {
  host: string;
  port: number;
  /** Readiness detail; `ready: false` answers 503. */
  ready: () => Promise<{ ready: boolean; [k: string]: unknown }>;
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

/** Plain-HTTP management port: /healthz (liveness), /readyz (readiness), /metrics. */
export async function startManagementServer(o: ManagementOptions): Promise<RunningServer> {
  const server = createHttpServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"live":true}\n');
      } else if (path === '/readyz') {
        const r = await o.ready().catch((e: Error) => ({ ready: false, error: e.message }));
        res
          .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify(r) + '\n');
      } else if (path === '/metrics' && o.metrics) {
        const m = await o.metrics();
        res.writeHead(200, { 'content-type': m.contentType }).end(m.body);
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  hardenServer(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return { server, url: `http://${addr.address}:${addr.port}`, close: () => closeServer(server) };
}
