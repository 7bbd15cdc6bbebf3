/**
 * The reference community: a Document Registry (ITI-18), a Document Repository (ITI-43), an
 * Imaging Document Source (RAD-69) and a Patient Demographics Supplier (ITI-47, the MPI) over seeded
 * data. A real SOAP server that the demo and the
 * end-to-end tests run against, in its own process.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createLogger,
  DEFAULT_LIMITS,
  requestLimits,
  noopAuditSink,
  Outbound,
  startSoapServer,
  type AuditSink,
  type Gateway,
  type GatewayLimits,
  type Logger,
  type RunningServer,
  type SoapRoute,
} from '@xcai/shared';
import type { SeedManifest } from './seed/types';
import { MetadataStore } from './registry/store';
import { registryStoredQuery } from './registry/transaction';
import { registerDocumentSet } from './registry/register';
import { provideAndRegister } from './repository/provide';
import { documentRepository, FileIndex, imagingDocumentSource, type Faults } from './sources';
import { PatientIndex } from './mpi/index';
import { patientDemographicsSupplier } from './mpi/pdq';

export interface ReferenceCommunityOptions {
  /** Seed directories (each with manifest.json) this community serves. */
  seedDirs: string[];
  host?: string;
  port?: number;
  audit?: AuditSink;
  log?: Logger;
  limits?: Partial<GatewayLimits>;
  /** The largest request (XCAI_MAX_REQUEST_BYTES, as at the gateways; default 4 MiB). */
  maxRequestBytes?: number;
  /** Answer every request this much later (tests of timeouts, the fan-out benchmark). */
  delayMs?: number;
  /** Documents to serve damaged (tests of the integrity checks). */
  faults?: Faults;
  /** Where documents submitted with ITI-41 / RAD-68 are kept (default: a new temporary folder). */
  storeDir?: string;
  /** A community without seeds (its documents all submitted): its homeCommunityId and repository id. */
  homeCommunityId?: string;
  repositoryUniqueId?: string;
}

export interface RunningCommunity extends RunningServer {
  manifests: SeedManifest[];
  /** Endpoint URLs. */
  registryUrl: string;
  repositoryUrl: string;
  idsUrl: string;
  /** ITI-41 / RAD-68 Provide and Register at the repository, ITI-42 Register at the registry. */
  provideUrl: string;
  registerUrl: string;
  /** The repository's id (the seed's, or the one given for a community without seeds). */
  repositoryUniqueId: string;
  /** The MPI's PDQv3 endpoint (ITI-47). */
  pdqUrl: string;
}

/** The same transaction, answering `ms` later. */
function delayed<T extends { merge: (...a: never[]) => Promise<unknown> }>(tx: T, ms: number): T {
  if (ms <= 0) return tx;
  return {
    ...tx,
    merge: async (...a: never[]) => {
      await new Promise((r) => setTimeout(r, ms));
      return tx.merge(...a);
    },
  };
}

export function readManifest(seedDir: string): SeedManifest {
  return JSON.parse(readFileSync(join(seedDir, 'manifest.json'), 'utf8')) as SeedManifest;
}

export async function startReferenceCommunity(o: ReferenceCommunityOptions): Promise<RunningCommunity> {
  const manifests = o.seedDirs.map(readManifest);
  const located = o.seedDirs.map((dir, i) => ({ dir, manifest: manifests[i] }));
  const home = manifests[0]?.homeCommunityId ?? o.homeCommunityId ?? 'urn:oid:1.3.6.1.4.1.21367.13.70.999';
  const log = o.log ?? createLogger({ service: 'reference-community', community: home });
  const store = new MetadataStore(manifests);
  const gateway: Gateway = {
    role: 'responding',
    directory: {
      homeCommunityId: home,
      name: 'reference community',
      deadlineMs: 30_000,
      local: { repositories: [], imagingDocumentSources: [] },
      communities: [],
      consumers: [],
      policy: { unknownPatient: 'XDSUnknownPatientId' },
    },
    // The repository's only peer is its own registry (ITI-42).
    outbound: new Outbound({}, (url) => url === registerUrl),
    audit: o.audit ?? noopAuditSink,
    log,
    limits: { ...(o.maxRequestBytes ? requestLimits(o.maxRequestBytes) : DEFAULT_LIMITS), ...o.limits },
    publicUrl: '',
  };
  const delay = o.delayMs ?? 0;
  const index = new FileIndex(located);
  const repositoryUniqueId =
    manifests[0]?.repositoryUniqueId ?? o.repositoryUniqueId ?? `${home.replace(/^urn:oid:/, '')}.2`;
  const storeDir = o.storeDir ?? mkdtempSync(join(tmpdir(), 'xcai-repository-'));
  mkdirSync(storeDir, { recursive: true });
  let registerUrl = '';
  const routes: SoapRoute[] = [
    { path: '/registry', tx: delayed(registryStoredQuery(store), delay) },
    { path: '/registry/register', tx: registerDocumentSet(store, home) },
    { path: '/repository', tx: delayed(documentRepository(located, o.faults, index), delay) },
    {
      path: '/repository/provide',
      tx: provideAndRegister({
        repositoryUniqueId,
        storeDir,
        registry: () => ({
          url: registerUrl,
          timeoutMs: 10_000,
          maxConcurrent: 4,
          maxResponseBytes: 1 << 20,
        }),
        stored: (d) => {
          index.repositoryIds.add(repositoryUniqueId);
          index.kos.set(`${repositoryUniqueId}|${d.uniqueId}`, { path: d.path, mimeType: d.mimeType });
        },
      }),
    },
    { path: '/ids', tx: delayed(imagingDocumentSource(located, o.faults), delay) },
    { path: '/pdq', tx: delayed(patientDemographicsSupplier(new PatientIndex(manifests), home), delay) },
  ];
  const server = await startSoapServer({ gateway, routes, host: o.host ?? '127.0.0.1', port: o.port ?? 0 });
  registerUrl = `${server.url}/registry/register`;
  log.info('reference community started', { url: server.url, documents: store.documents.size });
  return {
    ...server,
    manifests,
    registryUrl: `${server.url}/registry`,
    repositoryUrl: `${server.url}/repository`,
    idsUrl: `${server.url}/ids`,
    provideUrl: `${server.url}/repository/provide`,
    registerUrl,
    repositoryUniqueId,
    pdqUrl: `${server.url}/pdq`,
  };
}
