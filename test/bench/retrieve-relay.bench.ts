/**
 * Retrieve relay benchmark (issue 3), run by hand: `node test/bench/run.js retrieve-relay [--smoke]`
 * (after `npx tsc -b tsconfig.build.json`). Options: `--runs N` (default 3), `--verify all|sample`
 * (SHA-1 of every instance, or of every 16th; default sample), `--only 2|0.5` (one size only),
 * `--cpu-prof DIR` (the gateways write V8 CPU profiles there), `--gateway-node-args "ARGS"` (extra node
 * options for both gateways).
 *
 * One study of 4,000 instances × 512 KiB (2 GiB), every instance asked for in one RAD-69:
 *   bench (consumer) → initiating gateway → RAD-75 → responding gateway → RAD-69 → Imaging Document
 *   Source (reference community), each its own process;
 * against, in the same run, a plain 2-hop byte pipe: bench → Node http pass-through → Node http
 * pass-through → the same Imaging Document Source, the same RAD-69 (no parsing in the pipes).
 * The consumer does the same work on both answers (parses the MTOM package, counts parts and bytes,
 * checks SHA-1s against the seed manifest), so the ratio measures what the two gateways cost.
 * Prints MiB/s for both (median and best of the runs, which alternate), the ratio (goal ≥ 0.8),
 * each gateway's peak RSS (VmHWM, goal ≤ 256 MiB), then the same with 1,000 instances (0.5 GiB) on
 * fresh gateway processes, and the peak RSS ratio 2 GiB / 0.5 GiB (goal ≤ 1.1). CPU-seconds per GiB
 * (and read/write system calls per MiB) of every process are printed too, with the ratio of the two
 * chains' CPU time: on a 2-core machine with four busy processes CPU is the limit, and CPU time is
 * steadier than wall-clock time when the machine is shared.
 * `--smoke`: 40 and 10 instances (20 and 5 MiB, still past the 16 MiB lookahead), one run each, a few
 * seconds — only the functional checks count there (the process exits non-zero if an answer is wrong).
 *
 * The seed is generated once and cached in the temp directory (keyed by count and size); the
 * 0.5 GiB study is the first series (1,000 instances) of the 2 GiB one.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  arg,
  benchSeed,
  fmtMiB,
  KiB,
  median,
  MiB,
  mibs,
  readManifest,
  retrieveBenchOptions,
  retrieveRad69,
  spawnProxy,
  studyRequest,
  usage,
  type Answer,
  type Proc,
  type Study,
  type Usage,
} from '../support/bench';
import { spawnCommunity, type CommunityProcess } from '../support/federation';
import { peakRss, spawnGateway } from '../support/processes';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';

const {
  smoke,
  runs: RUNS,
  verifyAll: VERIFY_ALL,
  only: ONLY,
  size: SIZE,
  large: LARGE,
  small: SMALL,
} = retrieveBenchOptions();
const CPU_PROF = arg('cpu-prof', '');
/** Extra node options for both gateways (e.g. V8 heap flags), space-separated. */
const GATEWAY_NODE_ARGS = arg('gateway-node-args', '').split(' ').filter(Boolean);
const IIG_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.191';
const retrieve = (url: string, study: Study): Promise<Answer> => retrieveRad69(url, study, VERIFY_ALL);

interface SizeResult {
  label: string;
  relay: number;
  pipe: number;
  iigRss: number;
  rigRss: number;
}

async function measureSize(
  label: string,
  study: Study,
  ids: CommunityProcess,
  m: SeedManifest,
  pipeUrl: string,
  pipes: Proc[],
): Promise<SizeResult> {
  const profArgs = (role: string) => [
    ...GATEWAY_NODE_ARGS,
    ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', join(CPU_PROF, `${label}-${role}`)] : []),
  ];
  // Fresh gateway processes per size, so each peak RSS belongs to one study size.
  const rig = await spawnGateway(
    'responding',
    {
      homeCommunityId: m.homeCommunityId,
      name: 'bench RIG',
      deadlineMs: 600_000,
      local: {
        imagingDocumentSources: [
          { repositoryUniqueId: m.idsRepositoryUniqueId, url: ids.ids, timeoutMs: 120_000 },
        ],
      },
      communities: [{ homeCommunityId: IIG_HOME, name: 'bench IIG' }],
    },
    {},
    profArgs('rig'),
  );
  const iig = await spawnGateway(
    'initiating',
    {
      homeCommunityId: IIG_HOME,
      name: 'bench IIG',
      deadlineMs: 600_000,
      communities: [
        {
          homeCommunityId: m.homeCommunityId,
          name: 'bench community',
          endpoints: { rad75: { url: `${rig.url}/rad75`, timeoutMs: 120_000 } },
          maxDocumentsPerRequest: Math.max(4000, LARGE),
        },
      ],
    },
    {},
    profArgs('iig'),
  );
  const relayUrl = `${iig.url}/rad69`;
  const procs: [string, number][] = [
    ['IDS', ids.proc.pid!],
    ['RIG', rig.proc.pid!],
    ['IIG', iig.proc.pid!],
    ['pipe 1', pipes[0].proc.pid!],
    ['pipe 2', pipes[1].proc.pid!],
  ];
  const sample = (): Usage[] => [...procs.map(([, pid]) => usage(pid)), usage(process.pid)];
  const relay: Answer[] = [];
  const pipe: Answer[] = [];
  let iigRss: number;
  let rigRss: number;
  const relayUse: Usage[][] = [];
  const pipeUse: Usage[][] = [];
  const timed = async (url: string, into: Answer[], uses: Usage[][]) => {
    const u0 = sample();
    const a = await retrieve(url, study);
    const u1 = sample();
    into.push(a);
    uses.push(
      u1.map((u, i) => ({
        cpu: u.cpu - u0[i].cpu,
        reads: u.reads - u0[i].reads,
        writes: u.writes - u0[i].writes,
      })),
    );
    return a;
  };
  try {
    // Warm-up (JIT, connections), not counted.
    if (!smoke) {
      const warm = studyRequest(m, 64);
      await retrieve(relayUrl, warm);
      await retrieve(pipeUrl, warm);
    }
    for (let r = 0; r < RUNS; r++) {
      const a = await timed(relayUrl, relay, relayUse);
      const b = await timed(pipeUrl, pipe, pipeUse);
      console.log(
        `  ${label} run ${r + 1}: relay ${mibs(a).toFixed(0)} MiB/s (${(a.ms / 1000).toFixed(2)} s), ` +
          `pipe ${mibs(b).toFixed(0)} MiB/s (${(b.ms / 1000).toFixed(2)} s), ratio ${(mibs(a) / mibs(b)).toFixed(3)}; ` +
          `${a.parts} parts, ${fmtMiB(a.bytes)}, ${a.hashed} SHA-1s checked per answer; ` +
          `body chunks received ${(a.wireBytes / a.wireChunks / KiB).toFixed(1)} vs ${(b.wireBytes / b.wireChunks / KiB).toFixed(1)} KiB on average; ` +
          `peak RSS so far IIG ${fmtMiB(peakRss(iig.proc.pid!))}, RIG ${fmtMiB(peakRss(rig.proc.pid!))}`,
      );
    }
  } finally {
    // VmHWM can only be read while the process lives.
    iigRss = peakRss(iig.proc.pid!);
    rigRss = peakRss(rig.proc.pid!);
    await Promise.all([iig.stop(), rig.stop()]);
  }
  const relayRate = median(relay.map(mibs));
  const pipeRate = median(pipe.map(mibs));
  const best = (xs: Answer[]) => Math.max(...xs.map(mibs));
  const mib = study.bytes / MiB;
  const names = [...procs.map(([n]) => n), 'consumer'];
  const per = (uses: Usage[][], skip: number[]) =>
    names
      .map((n, i) => {
        if (skip.includes(i)) return '';
        const cpu = (median(uses.map((u) => u[i].cpu)) / mib) * 1024;
        const rd = median(uses.map((u) => u[i].reads)) / mib;
        const wr = median(uses.map((u) => u[i].writes)) / mib;
        return `${n} ${cpu.toFixed(2)} (${rd.toFixed(1)} reads, ${wr.toFixed(1)} writes per MiB)`;
      })
      .filter(Boolean)
      .join(', ');
  console.log(
    `${label} (${study.instances.size} × ${SIZE / KiB} KiB = ${fmtMiB(study.bytes)}, ${RUNS} run(s)): ` +
      `relay ${relayRate.toFixed(0)} MiB/s (best ${best(relay).toFixed(0)}), pipe ${pipeRate.toFixed(0)} MiB/s (best ${best(pipe).toFixed(0)}), ` +
      `ratio ${(relayRate / pipeRate).toFixed(3)} (best/best ${(best(relay) / best(pipe)).toFixed(3)}; goal ≥ 0.8)`,
  );
  console.log(
    `  peak RSS: initiating gateway ${fmtMiB(iigRss)}, responding gateway ${fmtMiB(rigRss)} (goal ≤ 256 MiB each)`,
  );
  console.log(`  CPU-s per GiB, relay: ${per(relayUse, [3, 4])}`);
  console.log(`  CPU-s per GiB, pipe: ${per(pipeUse, [1, 2])}`);
  // On a machine where all the processes compete for the cores, throughput follows total CPU time:
  // the ratio of the chains' CPU-seconds is a steadier estimate than wall-clock time on a busy host.
  const chain = (uses: Usage[][], skip: number[]) =>
    median(uses.map((u) => u.reduce((t, x, i) => (skip.includes(i) ? t : t + x.cpu), 0)));
  console.log(
    `  CPU-time ratio (pipe chain / relay chain, all processes): ${(chain(pipeUse, [1, 2]) / chain(relayUse, [3, 4])).toFixed(3)}`,
  );
  return { label, relay: relayRate, pipe: pipeRate, iigRss, rigRss };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const seedDir = await benchSeed(LARGE, SIZE);
  const m = readManifest(seedDir);
  if (CPU_PROF) mkdirSync(CPU_PROF, { recursive: true });
  const ids = await spawnCommunity([seedDir]);
  const pipe2 = await spawnProxy(ids.url);
  const pipe1 = await spawnProxy(pipe2.url);
  const pipeUrl = `${pipe1.url}/ids`;
  console.log(
    `retrieve relay, node ${process.version}, ${RUNS} run(s) per size, SHA-1 of ${VERIFY_ALL ? 'every' : 'every 16th'} instance checked by the consumer`,
  );
  const results: SizeResult[] = [];
  try {
    const sizes: [string, number][] = [
      [smoke ? `${fmtMiB(LARGE * SIZE)}` : '2 GiB', LARGE],
      [smoke ? `${fmtMiB(SMALL * SIZE)}` : '0.5 GiB', SMALL],
    ];
    for (const [label, count] of sizes) {
      if (ONLY && !label.startsWith(ONLY)) continue;
      results.push(await measureSize(label, studyRequest(m, count), ids, m, pipeUrl, [pipe1, pipe2]));
    }
  } finally {
    await Promise.all([ids.stop(), pipe1.stop(), pipe2.stop()]);
  }
  if (results.length === 2) {
    const [big, small] = results;
    console.log(
      `peak RSS ratio ${big.label} / ${small.label}: initiating gateway ${(big.iigRss / small.iigRss).toFixed(3)}, ` +
        `responding gateway ${(big.rigRss / small.rigRss).toFixed(3)} (goal ≤ 1.1)`,
    );
  }
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e);
    process.exit(1);
  },
);
