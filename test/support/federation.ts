import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  silentLogger,
  type AuditEvent,
  type AuditSink,
  type Directory,
  type GatewayOptions,
  type RunningGateway,
  readDirectory,
  type ImagingRequest,
} from '@xcai/shared';
import {
  defaultDemoSpecs,
  GENERATOR,
  generateCommunitySeed,
  xcpdDemoSpecs,
} from '../../services/reference-community/src/seed/generate';
import { startInitiatingGateway } from '../../services/initiating-gateway/src/index';
import { startRespondingGateway } from '../../services/responding-gateway/src/index';
import type {
  ManifestStudy,
  SeedManifest,
  SeedSpec,
} from '../../services/reference-community/src/seed/types';

export const ROOT = resolve(__dirname, '../..');

/**
 * Seeds for the demo communities A, B, C, generated once per machine and test run into the temp
 * directory (never committed), shared by the test files.
 */
export function demoSeeds(): Promise<Record<'A' | 'B' | 'C', string>> {
  return seedsOnce('seeds', defaultDemoSpecs);
}

/** The same communities as `npm start` runs them: each with its own patient ids (xcpdDemoSpecs). */
export function xcpdSeeds(): Promise<Record<'A' | 'B' | 'C', string>> {
  return seedsOnce('seeds-xcpd', xcpdDemoSpecs);
}

async function seedsOnce(name: string, specs: () => SeedSpec[]): Promise<Record<'A' | 'B' | 'C', string>> {
  // Named by what is generated, so a changed spec never reuses an older seed left in the temp directory.
  const version = createHash('sha256')
    .update(JSON.stringify([GENERATOR, specs()]))
    .digest('hex')
    .slice(0, 12);
  const base = join(tmpdir(), `xcai-test-${name}-${version}-${process.getuid?.() ?? 0}`);
  const out = { A: join(base, 'A'), B: join(base, 'B'), C: join(base, 'C') };
  if (existsSync(join(base, 'done'))) return out;
  const work = mkdtempSync(join(tmpdir(), 'xcai-seeding-'));
  for (const spec of specs()) await generateCommunitySeed(spec, join(work, spec.community));
  mkdirSync(join(work, 'done'));
  try {
    renameSync(work, base);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another worker won the race
  }
  return out;
}

export interface CommunityProcess {
  url: string;
  registry: string;
  repository: string;
  ids: string;
  /** The reference MPI (ITI-47). */
  pdq: string;
  homeCommunityId: string;
  repositoryUniqueId: string;
  idsRepositoryUniqueId: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a reference community in its own process (a real server, not a mock in the test). */
export async function spawnCommunity(
  seedDirs: string[],
  opts: { delayMs?: number; corrupt?: string[]; truncate?: string[]; env?: Record<string, string> } = {},
): Promise<CommunityProcess> {
  const main = join(ROOT, 'services/reference-community/dist/main.js');
  if (!existsSync(main))
    throw new Error(`${main} is missing: run "npm run build" before the end-to-end tests`);
  const args = [
    main,
    ...seedDirs.flatMap((d) => ['--seed', d]),
    ...(opts.corrupt ?? []).flatMap((u) => ['--corrupt', u]),
    ...(opts.truncate ?? []).flatMap((u) => ['--truncate', u]),
    '--port',
    '0',
    '--delay-ms',
    String(opts.delayMs ?? 0),
  ];
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const line = await new Promise<string>((res, rej) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', (l) => res(l));
    proc.once('exit', (code) => rej(new Error(`reference community exited (${code}): ${stderr}`)));
  });
  const info = JSON.parse(line) as Omit<CommunityProcess, 'proc' | 'stop'>;
  return {
    ...info,
    proc,
    stop: () =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null) return res();
        proc.once('exit', () => res());
        proc.kill('SIGTERM');
      }),
  };
}

/** Collects audit events in memory (tests of what each transaction records). */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  record(e: AuditEvent): void {
    this.events.push(e);
  }
  async close(): Promise<void> {}
}

/** For benchmarks, whose one client is one peer: the per-peer limits lifted (defaults: 50 requests/s). */
export const BENCH_LIMITS = {
  maxConcurrentRequests: 10_000,
  requestsPerSecond: 100_000,
  burst: 100_000,
  maxConnections: 10_000,
};

export const testSettings = {
  directoryFile: '(inline)',
  host: '127.0.0.1',
  port: 0,
  mgmtPort: -1,
  audit: { transport: 'none' as const },
  maxRequestBytes: 4 * 1024 * 1024,
};

export function directory(raw: unknown): Directory {
  return readDirectory(raw, 'test directory');
}

export function startIG(dir: Directory, o: Partial<GatewayOptions> = {}): Promise<RunningGateway> {
  return startInitiatingGateway({ settings: testSettings, directory: dir, log: silentLogger, ...o });
}

export function startRG(dir: Directory, o: Partial<GatewayOptions> = {}): Promise<RunningGateway> {
  return startRespondingGateway({ settings: testSettings, directory: dir, log: silentLogger, ...o });
}

export type Label = 'A' | 'B' | 'C';

/** The `local` directory section for a reference community's registry, repository and IDS. */
export function localOf(
  ref: Pick<
    CommunityProcess,
    'registry' | 'repository' | 'ids' | 'repositoryUniqueId' | 'idsRepositoryUniqueId'
  >,
) {
  return {
    registry: { url: ref.registry },
    repositories: [{ repositoryUniqueId: ref.repositoryUniqueId, url: ref.repository }],
    imagingDocumentSources: [{ repositoryUniqueId: ref.idsRepositoryUniqueId, url: ref.ids }],
  };
}

/** Directory of a responding gateway in front of a reference community. */
export function rgDirectoryFor(
  ref: CommunityProcess,
  initiators: { homeCommunityId: string; name: string }[],
  extra: Record<string, unknown> = {},
) {
  return directory({
    homeCommunityId: ref.homeCommunityId,
    name: 'RG',
    local: localOf(ref),
    communities: initiators,
    ...extra,
  });
}

/** A remote community entry for an initiating gateway's directory. */
export function remoteCommunity(
  name: string,
  homeCommunityId: string,
  rgUrl: string,
  extra: Record<string, unknown> = {},
) {
  return {
    homeCommunityId,
    name,
    endpoints: {
      iti38: { url: `${rgUrl}/iti38` },
      iti39: { url: `${rgUrl}/iti39` },
      rad75: { url: `${rgUrl}/rad75` },
    },
    ...extra,
  };
}

/** Directory of the initiating gateway of community A. */
export function igDirectoryFor(
  ref: CommunityProcess,
  communities: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
) {
  return directory({
    homeCommunityId: ref.homeCommunityId,
    name: 'A',
    deadlineMs: 10_000,
    local: localOf(ref),
    communities,
    ...extra,
  });
}

/** Transfer syntaxes the seed generator writes (Explicit and Implicit VR LE, JPEG Lossless SV1, JPEG-LS Lossless). */
export const SEED_TRANSFER_SYNTAXES = [
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2',
  '1.2.840.10008.1.2.4.70',
  '1.2.840.10008.1.2.4.80',
];

/**
 * A RAD-69/RAD-75 request for the instances of a seeded study, as a consumer builds it from the
 * KOS: the first `limit` instances (default all), `extraInFirstSeries` SOP Instance UIDs added to
 * the first series (e.g. ones that do not exist).
 */
export function studyImagingRequest(
  m: SeedManifest,
  study: ManifestStudy,
  o: { ts?: string[]; limit?: number; extraInFirstSeries?: string[] } = {},
): ImagingRequest {
  let left = o.limit ?? Number.MAX_SAFE_INTEGER;
  const series: ImagingRequest['studies'][number]['series'] = [];
  study.series.forEach((s, i) => {
    const uids = [
      ...s.instances.slice(0, Math.max(0, left)).map((x) => x.sopInstanceUid),
      ...(i === 0 ? (o.extraInFirstSeries ?? []) : []),
    ];
    left -= s.instances.length;
    if (!uids.length) return;
    series.push({
      seriesInstanceUid: s.seriesInstanceUid,
      documents: uids.map((documentUniqueId) => ({
        homeCommunityId: m.homeCommunityId,
        repositoryUniqueId: m.idsRepositoryUniqueId,
        documentUniqueId,
      })),
    });
  });
  return {
    studies: [{ studyInstanceUid: study.studyInstanceUid, series }],
    transferSyntaxUids: o.ts ?? SEED_TRANSFER_SYNTAXES,
  };
}
