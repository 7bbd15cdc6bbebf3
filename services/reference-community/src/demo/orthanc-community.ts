/**
 * `npm run demo -- --orthanc`: a fourth community, D, whose images live in a real PACS — Orthanc with
 * its DICOMweb plugin, in its own network namespace (./orthanc.ts) — behind the imaging-source
 * bridge, as a hospital would plug its existing archive in:
 *
 *   Orthanc ← WADO-RS / QIDO-RS ← imaging-source bridge (RAD-69; publishes KOS manifests with RAD-68)
 *   reference community D: registry + repository only (every document in it was submitted by the bridge)
 *   responding gateway D (mutual TLS with community A, like B and C)
 *
 * D's studies (seed spec `orthancDemoSpec`) are loaded into Orthanc with STOW-RS; the bridge publishes
 * them before the demo says it is ready, and polls Orthanc for new studies every 30 s afterwards (or at
 * once: POST <bridge>/publish). The local systems talk plain HTTP on loopback, as in A, B and C.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { generateCommunitySeed } from '../seed/generate';
import { DEMO_AFFINITY_DOMAIN_OID, orthancDemoSpec } from '../seed/specs';
import type { SeedManifest } from '../seed/types';
import { orthancAvailable, startOrthanc } from './orthanc';

/** What the federation lends this module: its folders, its process handling, its certificates. */
export interface DemoContext {
  root: string;
  dirs: { run: string; seeds: string; certs: string; config: string };
  caFile: string;
  /** Community A: the only community D's responding gateway accepts. */
  initiating: { homeCommunityId: string; certificateName: string };
  /** Starts a process whose output goes to the demo's logs; it is stopped with the demo. */
  spawn(name: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess;
  /** The first stdout line `pick` accepts, or an error if the process dies first. */
  ready<T>(proc: ChildProcess, name: string, pick: (line: string) => T | undefined): Promise<T>;
  gatewayUrl(line: string): string | undefined;
  /** XCAI_TLS_* for a certificate made by deploy/certs/make-certs.sh in dirs.certs. */
  tls(name: string): Record<string, string>;
  /** XCAI_AUDIT_* for a service auditing to the demo's Audit Record Repository. */
  audit(name: string): Record<string, string>;
  /** Called when the demo stops. */
  onStop(f: () => Promise<void>): void;
}

export interface OrthancCommunity {
  manifest: SeedManifest;
  seedDir: string;
  /** The entry for community A's initiating gateway directory. */
  peer: {
    homeCommunityId: string;
    name: string;
    endpoints: { iti38: string; iti39: string; rad75: string };
    identity: { trustAnchors: string[]; names: string[] };
  };
  gateway: Record<string, string>;
  registry: string;
  repository: string;
  /** The bridge's RAD-69 endpoint. */
  bridge: string;
  /** For the endpoints JSON and the ready message. */
  info: OrthancInfo;
}

export interface OrthancInfo {
  archive: string;
  credentialsFile: string;
  bridge: string;
  publish: string;
  studies: number;
}

export function orthancSummary(o: OrthancInfo): string[] {
  return [
    `Community D's images are in Orthanc: DICOMweb ${o.archive} (user:password in ${o.credentialsFile}),`,
    `  served by the imaging-source bridge ${o.bridge}, which published ${o.studies} studies`,
    `  (it polls Orthanc every 30 s; POST ${o.publish} publishes new ones now).`,
  ];
}

const LABEL = 'D';

export async function startOrthancCommunity(c: DemoContext): Promise<OrthancCommunity> {
  if (!orthancAvailable())
    throw new Error(
      '--orthanc needs Orthanc and its DICOMweb plugin (apt-get install orthanc orthanc-dicomweb) ' +
        'and network namespaces (unshare -n, as root)',
    );
  const seedDir = join(c.dirs.seeds, LABEL);
  const spec = orthancDemoSpec();
  const m = await generateCommunitySeed(spec, seedDir);
  const orthanc = await startOrthanc({ dir: join(c.dirs.run, 'orthanc') });
  c.onStop(() => orthanc.stop());
  const files = m.patients.flatMap((p) =>
    p.studies.flatMap((s) => s.series.flatMap((r) => r.instances.map((i) => join(seedDir, i.path)))),
  );
  const stored = await orthanc.stow(files);
  if (stored !== files.length) throw new Error(`Orthanc stored ${stored} of ${files.length} instances`);

  const refProc = c.spawn(
    `reference-${LABEL}`,
    [
      join(c.root, 'services/reference-community/dist/main.js'),
      '--home-community-id',
      m.homeCommunityId,
      '--repository-unique-id',
      m.repositoryUniqueId,
      '--store',
      join(c.dirs.run, `documents-${LABEL}`),
    ],
    {},
  );
  const ref = await c.ready(refProc, `reference community ${LABEL}`, (l) =>
    l.startsWith('{"url"')
      ? (JSON.parse(l) as { registry: string; repository: string; provide: string })
      : undefined,
  );
  const gw = `gw-${LABEL.toLowerCase()}`;
  const bridgeCert = `imaging-source-${LABEL.toLowerCase()}`;
  execFileSync(join(c.root, 'deploy/certs/make-certs.sh'), [c.dirs.certs, gw, bridgeCert], {
    stdio: 'ignore',
  });

  const bridgeFile = join(c.dirs.config, `directory-${LABEL}-imaging-source.json`);
  writeFileSync(
    bridgeFile,
    JSON.stringify(
      {
        homeCommunityId: m.homeCommunityId,
        name: `Community ${LABEL} imaging-source bridge`,
        local: {
          archive: {
            url: orthanc.dicomWeb,
            repositoryUniqueId: m.idsRepositoryUniqueId,
            auth: { basicFile: orthanc.basicFile },
            // Orthanc does not say which syntax it stores (no 0008,3002): learn it with
            // transfer-syntax=*, so that instances go out byte-identical when their syntax is asked for.
            anySyntax: true,
          },
          publish: {
            repository: { url: ref.provide },
            intervalMs: 30_000,
            stateFile: join(c.dirs.run, `published-${LABEL}.json`),
            assigningAuthority: DEMO_AFFINITY_DOMAIN_OID,
            sourceId: spec.sourceId,
            languageCode: 'ja-JP',
          },
        },
      },
      null,
      2,
    ),
  );
  const bridgeTls = c.tls(bridgeCert);
  const bridgeProc = c.spawn(
    `imaging-source-${LABEL}`,
    [join(c.root, 'services/imaging-source/dist/main.js')],
    {
      XCAI_DIRECTORY: bridgeFile,
      XCAI_PORT: '0',
      XCAI_MGMT_PORT: '0',
      XCAI_HOST: '127.0.0.1',
      // Serves plain HTTP on loopback like the other local systems; audits over TLS with its certificate.
      XCAI_AUDIT_TLS_CERT: bridgeTls.XCAI_TLS_CERT,
      XCAI_AUDIT_TLS_KEY: bridgeTls.XCAI_TLS_KEY,
      XCAI_AUDIT_TLS_CA: bridgeTls.XCAI_TLS_CA,
      ...c.audit(`imaging-source-${LABEL}`),
    },
  );
  const bridge = await c.ready(bridgeProc, `imaging-source bridge ${LABEL}`, c.gatewayUrl);
  const published = await publishNow(bridge);
  const studies = m.patients.reduce((n, p) => n + p.studies.length, 0);
  if (published.failed || published.published + published.unchanged + published.replaced !== studies)
    throw new Error(`the bridge published ${JSON.stringify(published)}, expected ${studies} studies`);

  const rgFile = join(c.dirs.config, `directory-${LABEL}.json`);
  writeFileSync(
    rgFile,
    JSON.stringify(
      {
        homeCommunityId: m.homeCommunityId,
        name: `Community ${LABEL}`,
        local: {
          registry: { url: ref.registry },
          repositories: [{ repositoryUniqueId: m.repositoryUniqueId, url: ref.repository }],
          imagingDocumentSources: [{ repositoryUniqueId: m.idsRepositoryUniqueId, url: `${bridge}/rad69` }],
        },
        communities: [
          {
            homeCommunityId: c.initiating.homeCommunityId,
            name: 'Community A',
            identity: { trustAnchors: [c.caFile], names: [c.initiating.certificateName] },
            replyTo: ['https://127.0.0.1:*'],
          },
        ],
        policy: { unknownPatient: 'empty-success' },
      },
      null,
      2,
    ),
  );
  const rgProc = c.spawn(
    `responding-gateway-${LABEL}`,
    [join(c.root, 'services/responding-gateway/dist/main.js')],
    {
      XCAI_DIRECTORY: rgFile,
      XCAI_PORT: '0',
      XCAI_MGMT_PORT: '0',
      XCAI_HOST: '127.0.0.1',
      ...c.tls(gw),
      XCAI_TLS_CLIENT_AUTH: 'required',
      ...c.audit(`responding-gateway-${LABEL}`),
    },
  );
  const rg = await c.ready(rgProc, `responding gateway ${LABEL}`, c.gatewayUrl);
  const gateway = { role: 'responding', iti38: `${rg}/iti38`, iti39: `${rg}/iti39`, rad75: `${rg}/rad75` };
  return {
    manifest: m,
    seedDir,
    peer: {
      homeCommunityId: m.homeCommunityId,
      name: `Community ${LABEL}`,
      endpoints: { iti38: gateway.iti38, iti39: gateway.iti39, rad75: gateway.rad75 },
      identity: { trustAnchors: [c.caFile], names: [gw] },
    },
    gateway,
    registry: ref.registry,
    repository: ref.repository,
    bridge: `${bridge}/rad69`,
    info: {
      archive: orthanc.dicomWeb,
      credentialsFile: orthanc.basicFile,
      bridge: `${bridge}/rad69`,
      publish: `${bridge}/publish`,
      studies,
    },
  };
}

async function publishNow(
  bridge: string,
): Promise<{ published: number; replaced: number; unchanged: number; failed: number }> {
  const res = await request(`${bridge}/publish`, { method: 'POST' });
  const body = (await res.body.json()) as {
    published: number;
    replaced: number;
    unchanged: number;
    failed: number;
    error?: string;
  };
  if (res.statusCode !== 200)
    throw new Error(`the bridge could not publish: ${body.error ?? res.statusCode}`);
  return body;
}
