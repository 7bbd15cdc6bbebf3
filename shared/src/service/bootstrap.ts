import type { Express } from 'express';
import { noopAuditSink, type AuditSink } from '../audit/event';
import { loadDirectory } from '../directory/load';
import type { Directory } from '../directory/types';
import { Outbound } from '../http/outbound';
import { startManagementServer, startSoapServer, type RunningServer, type SoapRoute } from '../http/server';
import { MemoryIntegrityStore } from '../integrity/store';
import type { EngineHooks } from '../pipeline/engine';
import type { Gateway, GatewayLimits } from '../pipeline/transaction';
import { createLogger, type Logger } from '../util/log';
import { DEFAULT_XML_LIMITS } from '../xml/parse';
import { readPem, type ServiceSettings } from './settings';

export interface GatewayOptions {
  role: 'initiating' | 'responding';
  routes: SoapRoute[];
  settings: ServiceSettings;
  /** Use this directory instead of reading settings.directoryFile (tests). */
  directory?: Directory;
  audit?: AuditSink;
  log?: Logger;
  hooks?: EngineHooks;
  limits?: Partial<GatewayLimits>;
  extend?: (app: Express, gateway: Gateway) => void;
}

export interface RunningGateway {
  gateway: Gateway;
  soap: RunningServer;
  mgmt?: RunningServer;
  /** Base URL of the SOAP endpoints. */
  url: string;
  close(): Promise<void>;
}

/** Every URL the directory names — the only places this gateway may send to. */
export function directoryUrls(d: Directory): Set<string> {
  const urls = new Set<string>();
  if (d.local.registry) urls.add(d.local.registry.url);
  for (const e of [...d.local.repositories, ...d.local.imagingDocumentSources]) urls.add(e.url);
  for (const c of d.communities) for (const e of Object.values(c.endpoints)) if (e) urls.add(e.url);
  return urls;
}

export const DEFAULT_LIMITS: GatewayLimits = {
  maxRequestBytes: 4 * 1024 * 1024,
  xml: DEFAULT_XML_LIMITS,
  maxRetrieveRootBytes: 64 * 1024 * 1024,
  lookaheadBytes: 16 * 1024 * 1024,
};

export async function startGateway(o: GatewayOptions): Promise<RunningGateway> {
  const s = o.settings;
  const log = (o.log ?? createLogger({ service: `${o.role}-gateway` })).child({});
  const directory = o.directory ?? loadDirectory(s.directoryFile);
  const audit = o.audit ?? noopAuditSink;
  const allowed = directoryUrls(directory);
  const tls = s.tls ? { cert: readPem(s.tls.cert), key: readPem(s.tls.key), ca: s.tls.ca.map(readPem) } : undefined;
  const outbound = new Outbound(tls ?? {}, (url) => allowed.has(url));
  const limits: GatewayLimits = { ...DEFAULT_LIMITS, maxRequestBytes: s.maxRequestBytes, ...o.limits };
  let publicUrl = s.publicUrl ?? '';
  const gateway: Gateway = {
    role: o.role,
    directory,
    outbound,
    audit,
    log,
    limits,
    get publicUrl() {
      return publicUrl;
    },
    integrity: o.role === 'initiating' ? new MemoryIntegrityStore() : undefined,
  };
  const soap = await startSoapServer({
    gateway,
    routes: o.routes,
    hooks: o.hooks,
    host: s.host,
    port: s.port,
    tls: tls && s.tls ? { ...tls, clientAuth: s.tls.clientAuth } : undefined,
    extend: o.extend ? (app) => o.extend?.(app, gateway) : undefined,
  });
  if (!publicUrl) publicUrl = soap.url;
  const mgmt =
    s.mgmtPort >= 0
      ? await startManagementServer({
          host: s.host,
          port: s.mgmtPort,
          ready: async () => ({ ready: true, directory: { homeCommunityId: directory.homeCommunityId, communities: directory.communities.length } }),
        })
      : undefined;
  log.info('gateway started', {
    role: o.role,
    url: soap.url,
    mgmt: mgmt?.url,
    homeCommunityId: directory.homeCommunityId,
    communities: directory.communities.length,
  });
  return {
    gateway,
    soap,
    mgmt,
    url: soap.url,
    async close() {
      await soap.close();
      await mgmt?.close();
      await outbound.close();
      await audit.close();
    },
  };
}

/** Runs a service until SIGINT/SIGTERM; a start-up error ends the process with a clear message. */
export function runMain(start: () => Promise<{ close(): Promise<void> }>): void {
  start().then(
    (svc) => {
      const stop = () => {
        svc.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    },
  );
}
