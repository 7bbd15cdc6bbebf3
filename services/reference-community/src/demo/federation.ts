/**
 * `npm start`: a three-community federation on loopback, in the foreground.
 *
 *   community A: initiating-gateway + its reference community (registry, repository, IDS)
 *   community B: responding-gateway + its reference community
 *   community C: responding-gateway + its reference community
 *
 * Every community issues its own patient ids under its own assigning authority (A's JP1001 is B's
 * B-4711 and C's C-20031): B and C are in the `xcpd` identity mode of A's directory, so the
 * initiating gateway discovers each patient's ids with ITI-55 (demographics from A's MPI, ITI-47)
 * before it queries, and each responding gateway matches against its own community's MPI.
 *
 * Every service runs in its own process, as it would be deployed. Gateways talk mutual TLS with
 * certificates from deploy/certs/make-certs.sh (a throwaway CA per run). When ready, the endpoints,
 * homeCommunityIds and seeded patients are printed, and written as JSON to $DEMO_ENDPOINTS_FILE
 * (default <run dir>/endpoints.json). SIGINT/SIGTERM stop everything.
 *
 * ATNA: an Audit Record Repository (the product's own, shared/src/audit/repository-main.ts: RFC 5425
 * syslog over mutual TLS with the demo CA, certificate `audit-repository`) runs for the federation;
 * every gateway audits to it with its own certificate and keeps its spool in <run dir>/audit-spool/.
 * The repository stores one record per line (JSON, audit-YYYYMMDD.jsonl) in $DEMO_AUDIT_DIR
 * (default <run dir>/audit), named as `auditDir` in the endpoints JSON.
 *
 * Environment: DEMO_RUN_DIR (default .run/demo), DEMO_PORT (consumer-facing port of the initiating
 * gateway, default a free one), DEMO_ENDPOINTS_FILE, DEMO_AUDIT_DIR, DEMO_ASYNC (e.g. `C`: A asks
 * those communities asynchronously, `async: true` in its directory). REDIS_URL / XCAI_REDIS_PREFIX,
 * when set, reach every gateway (correlation state in that Redis instead of in-process).
 *
 * SIGUSR2 restarts one responding gateway (B, then C, …: SIGTERM, then started again on the same
 * ports); the soak benchmark (test/bench/soak.bench.ts) uses it.
 *
 * `--orthanc` (`npm run demo -- --orthanc`): a fourth community, D, whose images live in a real
 * Orthanc behind the imaging-source bridge (./orthanc-community.ts); its patient ids are A's (the
 * affinity domain's, `shared` identity mode). Needs Debian's orthanc and orthanc-dicomweb. Without
 * it the demo is self-contained.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  generateCommunitySeed,
  XCPD_DEMO_AUTHORITIES,
  xcpdDemoPatientIds,
  xcpdDemoSpecs,
} from '../seed/generate';
import { consentLine, demoConsentDirectory, seededConsents, type SeededConsent } from '../seed/consent';
import type { SeedManifest } from '../seed/types';
import {
  orthancSummary,
  startOrthancCommunity,
  type OrthancCommunity,
  type OrthancInfo,
} from './orthanc-community';

const ROOT = resolve(__dirname, '../../../..');
const LABELS = ['A', 'B', 'C'] as const;
type Label = (typeof LABELS)[number];

export interface DemoEndpoints {
  runDir: string;
  consumer: { iti18: string; iti43: string; rad69: string; wsdl: string };
  tls: { ca: string; clientCertificate: string; clientKey: string };
  communities: {
    label: Label | 'D';
    homeCommunityId: string;
    gateway: Record<string, string>;
    registry: string;
    repository: string;
    imagingDocumentSource: string;
    repositoryUniqueId: string;
    idsRepositoryUniqueId: string;
    seedDir: string;
  }[];
  /** `id`: the patient's id in community A (what the demo consumer asks with); `ids`: in each community. */
  patients: {
    id: string;
    name: string;
    communities: (Label | 'D')[];
    ids: Partial<Record<Label | 'D', string>>;
  }[];
  /** The seeded consent documents and what they do. */
  consent?: SeededConsent[];
  /** Where the demo's Audit Record Repository stores the records it receives. */
  auditDir?: string;
  /** The repository's address (tls://host:port) and each gateway's audit spool directory. */
  auditRepository?: string;
  auditSpools?: Record<string, string>;
  /** Each gateway's management address (/metrics, /readyz), by service name. */
  management?: Record<string, string>;
  /** With --orthanc: where community D's archive and bridge are. */
  orthanc?: OrthancInfo;
}

interface Child {
  name: string;
  proc: ChildProcess;
  /** Set while the federation itself restarts it (SIGUSR2): its exit is not a failure. */
  restarting?: boolean;
}

const children: Child[] = [];
/** Run when the demo stops, after the services (e.g. Orthanc's namespace with --orthanc). */
const cleanups: (() => Promise<void>)[] = [];

function spawnService(name: string, args: string[], env: NodeJS.ProcessEnv, logDir: string): ChildProcess {
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  proc.stdout?.pipe(log);
  proc.stderr?.pipe(log);
  const child: Child = { name, proc };
  children.push(child);
  proc.once('exit', (code, signal) => {
    if (!stopping && !child.restarting) {
      process.stderr.write(
        `${name} stopped unexpectedly (${signal ?? code}); see ${join(logDir, `${name}.log`)}\n`,
      );
      void stop(1);
    }
  });
  return proc;
}

/** Resolves with the first stdout line `pick` accepts (a ready message), or rejects if the process dies. */
function readyLine<T>(proc: ChildProcess, name: string, pick: (line: string) => T | undefined): Promise<T> {
  return new Promise((res, rej) => {
    const rl = createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => rej(new Error(`${name} did not start within 30 s`)), 30_000);
    rl.on('line', (l) => {
      const v = pick(l);
      if (v !== undefined) {
        clearTimeout(timer);
        res(v);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited (${code}) during start-up`));
    });
  });
}

function gatewayUrl(line: string): string | undefined {
  return gatewayStarted(line)?.url;
}

/** The SOAP and management addresses of a gateway's "gateway started" log line. */
function gatewayStarted(line: string): { url: string; mgmt: string } | undefined {
  try {
    const rec = JSON.parse(line) as { msg?: string; url?: string; mgmt?: string };
    return rec.msg === 'gateway started' && rec.url ? { url: rec.url, mgmt: rec.mgmt ?? '' } : undefined;
  } catch {
    return undefined;
  }
}

/** How a responding gateway was started, to start it again on the same ports (SIGUSR2). */
interface Restartable {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logDir: string;
  url: string;
  mgmt: string;
}
const restartables: Restartable[] = [];
let restarts = 0;
let restarting: Promise<void> = Promise.resolve();

/**
 * SIGUSR2: the next responding gateway (B, C, B, …) is stopped with SIGTERM, as an operator's
 * rolling restart would, and started again on the same ports; for soak tests. Prints
 * `restarted <name> in <ms> ms` when it serves again.
 */
function restartNext(): Promise<void> {
  restarting = restarting.then(async () => {
    if (!restartables.length || stopping) return;
    const r = restartables[restarts++ % restartables.length];
    const child = children.find((c) => c.name === r.name && c.proc.exitCode === null && !c.restarting);
    if (!child) return;
    const t0 = Date.now();
    child.restarting = true;
    await stopAll([child]);
    children.splice(children.indexOf(child), 1);
    if (stopping) return;
    const port = new URL(r.url).port;
    const mgmtPort = r.mgmt ? new URL(r.mgmt).port : '0';
    const proc = spawnService(
      r.name,
      r.args,
      { ...r.env, XCAI_PORT: port, XCAI_MGMT_PORT: mgmtPort },
      r.logDir,
    );
    await readyLine(proc, r.name, gatewayStarted);
    process.stdout.write(`restarted ${r.name} in ${Date.now() - t0} ms\n`);
  });
  return restarting.catch((e: Error) => {
    process.stderr.write(`restart failed: ${e.message}\n`);
    void stop(1);
  });
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // The audit repository goes last, so that the gateways' last records (application stop) reach it.
  const arr = children.filter((c) => c.name === AUDIT_REPOSITORY);
  await stopAll(children.filter((c) => c.name !== AUDIT_REPOSITORY));
  await Promise.all(cleanups.map((f) => f().catch(() => undefined)));
  await stopAll(arr);
  process.exit(code);
}

const AUDIT_REPOSITORY = 'audit-repository';

async function stopAll(list: Child[]): Promise<void> {
  await Promise.all(
    list.map(
      (c) =>
        new Promise<void>((r) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) return r();
          c.proc.once('exit', () => r());
          c.proc.kill('SIGTERM');
          setTimeout(() => c.proc.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
}

async function main(): Promise<void> {
  const runDir = resolve(process.env.DEMO_RUN_DIR ?? join(ROOT, '.run/demo'));
  rmSync(runDir, { recursive: true, force: true });
  const dirs = {
    seeds: join(runDir, 'seeds'),
    certs: join(runDir, 'certs'),
    config: join(runDir, 'config'),
    logs: join(runDir, 'logs'),
    auditSpool: join(runDir, 'audit-spool'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));

  process.stdout.write('Generating seed data and certificates…\n');
  const manifests = {} as Record<Label, SeedManifest>;
  for (const spec of xcpdDemoSpecs())
    manifests[spec.community as Label] = await generateCommunitySeed(spec, join(dirs.seeds, spec.community));
  execFileSync(
    join(ROOT, 'deploy/certs/make-certs.sh'),
    [dirs.certs, 'gw-a', 'gw-b', 'gw-c', 'consumer', 'audit-repository'],
    { stdio: 'ignore' },
  );
  const cert = (n: string) => ({
    XCAI_TLS_CERT: join(dirs.certs, `${n}.crt`),
    XCAI_TLS_KEY: join(dirs.certs, `${n}.key`),
    XCAI_TLS_CA: join(dirs.certs, 'ca.crt'),
  });

  // The federation's Audit Record Repository (ITI-20 receiver), started first.
  const auditDir = resolve(process.env.DEMO_AUDIT_DIR ?? join(runDir, 'audit'));
  const arrProc = spawnService(
    AUDIT_REPOSITORY,
    [join(ROOT, 'shared/dist/audit/repository-main.js')],
    {
      XCAI_ARR_DIR: auditDir,
      XCAI_ARR_HOST: '127.0.0.1',
      XCAI_ARR_PORT: '0',
      XCAI_ARR_TLS_CERT: join(dirs.certs, `${AUDIT_REPOSITORY}.crt`),
      XCAI_ARR_TLS_KEY: join(dirs.certs, `${AUDIT_REPOSITORY}.key`),
      XCAI_ARR_TLS_CA: join(dirs.certs, 'ca.crt'),
    },
    dirs.logs,
  );
  const arrPort = await readyLine(arrProc, 'audit repository', (l) => {
    try {
      const rec = JSON.parse(l) as { msg?: string; port?: number };
      return rec.msg === 'audit repository started' ? rec.port : undefined;
    } catch {
      return undefined;
    }
  });
  const auditSpools: Record<string, string> = {};
  // Each gateway audits over RFC 5425 with its own certificate (XCAI_TLS_*), spooling locally first.
  const audit = (name: string) => {
    auditSpools[name] = join(dirs.auditSpool, name);
    return {
      XCAI_AUDIT_TRANSPORT: 'tls',
      XCAI_AUDIT_HOST: '127.0.0.1',
      XCAI_AUDIT_PORT: String(arrPort),
      XCAI_AUDIT_TLS_SERVERNAME: AUDIT_REPOSITORY,
      XCAI_AUDIT_SPOOL_DIR: auditSpools[name],
      XCAI_AUDIT_SOURCE_ID: name,
    };
  };

  // Reference communities: local systems of each community (plain HTTP on loopback).
  const refMain = join(ROOT, 'services/reference-community/dist/main.js');
  const refs = {} as Record<Label, { registry: string; repository: string; ids: string; pdq: string }>;
  await Promise.all(
    LABELS.map(async (k) => {
      const proc = spawnService(`reference-${k}`, [refMain, '--seed', join(dirs.seeds, k)], {}, dirs.logs);
      refs[k] = await readyLine(proc, `reference community ${k}`, (l) =>
        l.startsWith('{"url"') ? (JSON.parse(l) as (typeof refs)[Label]) : undefined,
      );
    }),
  );
  const local = (k: Label) => ({
    registry: { url: refs[k].registry },
    patientDemographicsSupplier: { url: refs[k].pdq, timeoutMs: 5_000 },
    repositories: [{ repositoryUniqueId: manifests[k].repositoryUniqueId, url: refs[k].repository }],
    imagingDocumentSources: [{ repositoryUniqueId: manifests[k].idsRepositoryUniqueId, url: refs[k].ids }],
  });
  const caFile = join(dirs.certs, 'ca.crt');

  // Responding gateways of B and C; they accept community A's gateway (certificate gw-a, issued by the
  // demo CA) and nothing else: any other certificate is refused and audited (security/admission.ts).
  const rgUrls = {} as Record<'B' | 'C', string>;
  const management: Record<string, string> = {};
  await Promise.all(
    (['B', 'C'] as const).map(async (k) => {
      const file = join(dirs.config, `directory-${k}.json`);
      writeFileSync(
        file,
        JSON.stringify(
          {
            homeCommunityId: manifests[k].homeCommunityId,
            name: `Community ${k}`,
            local: local(k),
            patientIdentity: { assigningAuthority: XCPD_DEMO_AUTHORITIES[k] },
            communities: [
              {
                homeCommunityId: manifests.A.homeCommunityId,
                name: 'Community A',
                identity: { trustAnchors: [caFile], names: ['gw-a'] },
                replyTo: ['https://127.0.0.1:*'],
              },
            ],
            policy: { unknownPatient: 'empty-success' },
            consent: demoConsentDirectory(),
          },
          null,
          2,
        ),
      );
      const name = `responding-gateway-${k}`;
      const args = [join(ROOT, 'services/responding-gateway/dist/main.js')];
      const env = {
        XCAI_DIRECTORY: file,
        XCAI_PORT: '0',
        XCAI_MGMT_PORT: '0',
        XCAI_HOST: '127.0.0.1',
        ...cert(`gw-${k.toLowerCase()}`),
        XCAI_TLS_CLIENT_AUTH: 'required',
        ...audit(name),
      };
      const proc = spawnService(name, args, env, dirs.logs);
      const started = await readyLine(proc, `responding gateway ${k}`, gatewayStarted);
      rgUrls[k] = started.url;
      management[name] = started.mgmt;
      restartables.push({ name, args, env, logDir: dirs.logs, ...started });
    }),
  );
  restartables.sort((a, b) => a.name.localeCompare(b.name));

  const orthanc: OrthancCommunity | undefined = process.argv.includes('--orthanc')
    ? await startOrthancCommunity({
        root: ROOT,
        dirs: { run: runDir, ...dirs },
        caFile,
        initiating: { homeCommunityId: manifests.A.homeCommunityId, certificateName: 'gw-a' },
        spawn: (name, args, env) => spawnService(name, args, env, dirs.logs),
        ready: readyLine,
        gatewayUrl,
        tls: cert,
        audit,
        onStop: (f) => cleanups.push(f),
      })
    : undefined;

  // Initiating gateway of A. DEMO_ASYNC=B,C: those communities are asked asynchronously (ReplyTo).
  const asyncLabels = new Set((process.env.DEMO_ASYNC ?? '').split(',').map((x) => x.trim()));
  const igFile = join(dirs.config, 'directory-A.json');
  writeFileSync(
    igFile,
    JSON.stringify(
      {
        homeCommunityId: manifests.A.homeCommunityId,
        name: 'Community A',
        local: local('A'),
        patientIdentity: { assigningAuthority: XCPD_DEMO_AUTHORITIES.A },
        communities: (['B', 'C'] as const)
          .map((k): Record<string, unknown> => ({
            homeCommunityId: manifests[k].homeCommunityId,
            name: `Community ${k}`,
            endpoints: {
              iti38: `${rgUrls[k]}/iti38`,
              iti39: `${rgUrls[k]}/iti39`,
              rad75: `${rgUrls[k]}/rad75`,
              iti55: `${rgUrls[k]}/iti55`,
            },
            patientIdentity: { mode: 'xcpd', assigningAuthority: XCPD_DEMO_AUTHORITIES[k] },
            identity: { trustAnchors: [caFile], names: [`gw-${k.toLowerCase()}`] },
            ...(asyncLabels.has(k) ? { async: true } : {}),
          }))
          .concat(orthanc ? [orthanc.peer] : []),
        consumers: [
          {
            name: 'demo PACS',
            identity: { trustAnchors: [caFile], names: ['consumer'] },
            replyTo: ['http://127.0.0.1:*', 'https://127.0.0.1:*'],
          },
        ],
      },
      null,
      2,
    ),
  );
  const igProc = spawnService(
    'initiating-gateway-A',
    [join(ROOT, 'services/initiating-gateway/dist/main.js')],
    {
      XCAI_DIRECTORY: igFile,
      XCAI_PORT: process.env.DEMO_PORT ?? '0',
      XCAI_MGMT_PORT: '0',
      XCAI_HOST: '127.0.0.1',
      ...cert('gw-a'),
      XCAI_TLS_CLIENT_AUTH: 'optional',
      ...audit('initiating-gateway-A'),
    },
    dirs.logs,
  );
  const igStarted = await readyLine(igProc, 'initiating gateway A', gatewayStarted);
  const igUrl = igStarted.url;
  management['initiating-gateway-A'] = igStarted.mgmt;

  const endpoints: DemoEndpoints = {
    runDir,
    consumer: {
      iti18: `${igUrl}/iti18`,
      iti43: `${igUrl}/iti43`,
      rad69: `${igUrl}/rad69`,
      wsdl: `${igUrl}/rad69?wsdl`,
    },
    tls: {
      ca: caFile,
      clientCertificate: join(dirs.certs, 'consumer.crt'),
      clientKey: join(dirs.certs, 'consumer.key'),
    },
    communities: LABELS.map((k) => ({
      label: k,
      homeCommunityId: manifests[k].homeCommunityId,
      gateway: (k === 'A'
        ? { role: 'initiating', iti18: `${igUrl}/iti18`, iti43: `${igUrl}/iti43`, rad69: `${igUrl}/rad69` }
        : {
            role: 'responding',
            iti55: `${rgUrls[k]}/iti55`,
            iti38: `${rgUrls[k]}/iti38`,
            iti39: `${rgUrls[k]}/iti39`,
            rad75: `${rgUrls[k]}/rad75`,
          }) as Record<string, string>,
      registry: refs[k].registry,
      repository: refs[k].repository,
      imagingDocumentSource: refs[k].ids,
      repositoryUniqueId: manifests[k].repositoryUniqueId,
      idsRepositoryUniqueId: manifests[k].idsRepositoryUniqueId,
      seedDir: join(dirs.seeds, k),
    })),
    patients: patientsOf(manifests),
    consent: seededConsents(manifests),
    auditDir,
    auditRepository: `tls://127.0.0.1:${arrPort}`,
    auditSpools,
    management,
  };
  if (orthanc) addOrthancCommunity(endpoints, orthanc);
  const endpointsFile = process.env.DEMO_ENDPOINTS_FILE ?? join(runDir, 'endpoints.json');
  writeFileSync(endpointsFile, JSON.stringify(endpoints, null, 2));
  process.on('SIGUSR2', () => void restartNext());
  process.stdout.write(summary(endpoints, endpointsFile));
}

/** Community D (--orthanc) in the endpoints: its bridge is its Imaging Document Source. */
function addOrthancCommunity(e: DemoEndpoints, o: OrthancCommunity): void {
  e.communities.push({
    label: 'D',
    homeCommunityId: o.manifest.homeCommunityId,
    gateway: o.gateway,
    registry: o.registry,
    repository: o.repository,
    imagingDocumentSource: o.bridge,
    repositoryUniqueId: o.manifest.repositoryUniqueId,
    idsRepositoryUniqueId: o.manifest.idsRepositoryUniqueId,
    seedDir: o.seedDir,
  });
  // D's patient ids are in A's assigning authority (the affinity domain's): A sends them unchanged.
  for (const p of o.manifest.patients) {
    const known = p.studies.length ? e.patients.find((q) => q.id === p.id) : undefined;
    if (!known) continue;
    known.communities.push('D');
    known.ids.D = p.id;
  }
  e.orthanc = o.info;
}

function patientsOf(manifests: Record<Label, SeedManifest>): DemoEndpoints['patients'] {
  return [...xcpdDemoPatientIds()].map(([id, ids]) => {
    const records = LABELS.map((k) => ({ k, p: manifests[k].patients.find((p) => p.id === ids[k]) }));
    return {
      id,
      name: records.find((r) => r.p)?.p?.displayName ?? '',
      communities: records.filter((r) => r.p?.studies.length).map((r) => r.k),
      ids,
    };
  });
}

function summary(e: DemoEndpoints, file: string): string {
  const lines = [
    '',
    'XCA-I demo federation is ready (Ctrl-C stops it).',
    '',
    'Consumer-facing endpoints (initiating gateway, community A; present the consumer certificate below):',
    `  ITI-18 Registry Stored Query        ${e.consumer.iti18}`,
    `  ITI-43 Retrieve Document Set        ${e.consumer.iti43}`,
    `  RAD-69 Retrieve Imaging Document Set ${e.consumer.rad69}`,
    '',
    'Communities:',
    ...e.communities.map(
      (c) =>
        `  ${c.label}  ${c.homeCommunityId}  ${Object.entries(c.gateway)
          .map(([k, v]) => `${k}: ${v}`)
          .join('  ')}`,
    ),
    '',
    "Patients (each community's own id, discovered with XCPD → communities holding studies):",
    ...e.patients.map(
      (p) =>
        `  ${p.name}  ${LABELS.map((k) => `${k}: ${p.ids[k] ?? '(unknown)'}`).join('  ')}  → ${p.communities.join(', ')}`,
    ),
    '',
    'Consent (BPPC documents in the registries; opt-out region: a patient without one is shared):',
    ...(e.consent ?? []).map(consentLine),
    '',
    `TLS: demo CA ${e.tls.ca}`,
    `     consumer certificate ${e.tls.clientCertificate} (key ${e.tls.clientKey})`,
    '',
    `Audit Record Repository ${e.auditRepository ?? '-'} stores every gateway's records in ${e.auditDir ?? '-'}`,
    '',
    ...(e.orthanc ? [...orthancSummary(e.orthanc), ''] : []),
    `Endpoints as JSON: ${file}`,
    `Logs: ${join(e.runDir, 'logs')}`,
    `Try: npm run demo:consumer -- --patient '${e.patients[0]?.id ?? ''}'`,
    `     npm run audit -- report --patient '${e.patients[0]?.id ?? ''}' ${e.auditDir ?? ''}`,
    '',
  ];
  return lines.join('\n');
}

main().catch((e: Error) => {
  process.stderr.write(`demo failed to start: ${e.message}\n`);
  void stop(2);
});
