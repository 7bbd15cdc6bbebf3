/**
 * Retrieve relay benchmark (issues 3, 17), run by hand:
 *   `node test/bench/run.js retrieve-relay [--smoke] [--plot out.svg]` (after `npm run build`).
 * Options: `--runs N` (default 3), `--tls` / `--no-tls` (one transport only; default both, TLS
 * first), `--only ROW[,ROW…]` (rows: 2, 0.5, latency, many, concurrent), `--verify all|sample` (SHA-1
 * of every instance, or of every 16th; default sample), `--plot FILE.svg` (throughput, RSS and CPU
 * over time), `--concurrent N` (default 8), `--concurrent-runs N` (default 1), `--latency-reps N`
 * (default 100), `--many N` (default 20,000), `--cpu-prof DIR` (the gateways write V8 CPU profiles
 * there), `--gateway-node-args "ARGS"` (extra node options for both gateways).
 *
 * Every row measures, in the same run and with the same consumer:
 *   relay: bench (consumer) → initiating gateway (IIG) → RAD-75 → responding gateway (RIG) → RAD-69 →
 *     Imaging Document Source (reference community), each its own process;
 *   pipe: bench → Node http(s) pass-through → pass-through → the same Imaging Document Source, the same
 *     RAD-69 (no parsing in the pipes).
 * With TLS (the default), consumer → IIG and IIG → RIG are mutual TLS exactly as deployed (the
 * gateways' own XCAI_TLS_* settings: IIG client certificates optional with the consumer named in the
 * directory, RIG client certificates required and mapped to the IIG's community; the gateways'
 * default cipher list and TLS floor), and the pipe hops are mutual TLS with the same certificates,
 * cipher list and floor (pipe 1 stands for the IIG, pipe 2 for the RIG); the protocol and cipher
 * each hop negotiates are printed and must agree between the chains. RIG → IDS is plain http inside
 * the responding community in both chains, as in deploy/docker. Fresh processes for every row.
 * The consumer parses the MTOM package, counts parts and bytes, checks SHA-1s against the seed
 * manifest, so the ratio measures what the two gateways cost.
 *
 * Rows (each figure with its ratio to the pipe chain, or the stated baseline, of the same run):
 *   2, 0.5: one study of 4,000 / 1,000 instances × 512 KiB (2 GiB, 0.5 GiB) in one RAD-69, `--runs`
 *     times, alternating: MiB/s (median, best), relay ÷ pipe (goal ≥ 0.85 with and without TLS);
 *     peak RSS per gateway (VmHWM; goal ≤ 256 MiB at 2 GiB) ÷ a pass-through hop's, and
 *     (peak − the peak after a 64-instance warm-up) per instance; CPU-s per GiB of every process,
 *     gateway ÷ its pass-through hop (goal ≤ 1.25), chain ÷ chain; peak RSS 2 GiB ÷ 0.5 GiB (≤ 1.1).
 *   latency: RAD-69 of 20 instances × 512 KiB, `--latency-reps` times alternating, p50 and p90 through
 *     the chain ÷ through the pipes (goal p50 ≤ 1.5).
 *   many: 20,000 instances × 8 KiB in one RAD-69: instances/s and MiB/s ÷ pipes, peak RSS per gateway
 *     and its ratio to the 0.5 GiB row (memory independent of instance count), and the per-instance
 *     estimate (peak RSS − the peak after a 64-instance warm-up) / instances (goal ≤ 1 KiB). The
 *     gateways and the Imaging Document Source get XCAI_MAX_REQUEST_BYTES=64MiB here (a 20,000-document
 *     RAD-69 is ~6 MB; default 4 MiB; the request's XML limit follows that setting).
 *   concurrent: 8 consumers at once, each retrieving a different 0.5 GiB study (8 studies in the
 *     seed), each on its own connection: aggregate MiB/s relay ÷ pipes, peak RSS per gateway (goal
 *     ≤ 400 MiB), CPU-s per GiB ratios as above.
 * CPU time is printed because on a 2-core machine with four busy processes CPU is the limit, and it
 * is steadier than wall-clock time when the machine is shared.
 * `--plot`: the first run of the first size row and the concurrent row (first transport), relay and
 * pipe, sampled every 100 ms: consumer MiB/s, RSS and CPU use of every process, as SVG.
 * `--smoke`: the same rows scaled down (40 and 10 instances — still past the 16 MiB lookahead —, 3
 * latency reps, 200 small instances, 2 consumers of 10 instances), TLS (and plain for the size rows),
 * one run each, and a plot to a temporary file, checked for well-formedness (xmllint) when no
 * `--plot` is given: a few seconds of work (about 20 CPU-s in all), only the functional checks count
 * (the process exits non-zero if an answer is wrong).
 *
 * Seeds are generated once and cached in the temp directory (keyed by count and size); the 0.5 GiB
 * study is the first series (1,000 instances) of the 2 GiB one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { DEFAULT_CIPHERS } from '@xcai/shared';
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
  sampler,
  spawnProxy,
  studyRequest,
  usage,
  type Answer,
  type Proc,
  type ProxyTls,
  type Sample,
  type Study,
  type Usage,
} from '../support/bench';
import { makePki, type TestPki } from '../support/certs';
import { BENCH_LIMITS, spawnCommunity, type CommunityProcess } from '../support/federation';
import { peakRss, spawnGateway, tlsEnv, type GatewayProcess } from '../support/processes';
import { svgPlot, type PlotPanel } from '../support/svg-plot';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';

const O = retrieveBenchOptions();
const { smoke, runs: RUNS, verifyAll: VERIFY_ALL, size: SIZE, large: LARGE, small: SMALL } = O;
const CPU_PROF = arg('cpu-prof', '');
/** Extra node options for both gateways (e.g. V8 heap flags), space-separated. */
const GATEWAY_NODE_ARGS = arg('gateway-node-args', '').split(' ').filter(Boolean);
const IIG_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.191';
const ROWS = O.only ? O.only.split(',') : ['2', '0.5', 'latency', 'many', 'concurrent'];
const WARM = 64;
/** Where the plot goes; in smoke mode without --plot a temporary file (removed afterwards). */
const PLOT_FILE = O.plot || (smoke ? join(mkdtempSync(join(tmpdir(), 'xcai-relay-plot-')), 'relay.svg') : '');
type Transport = 'tls' | 'plain';

/** The processes of one row: both chains over one Imaging Document Source. */
interface Chain {
  transport: Transport;
  relayUrl: string;
  pipeUrl: string;
  ids: CommunityProcess;
  rig: GatewayProcess;
  iig: GatewayProcess;
  pipes: Proc[];
  /** IDS, RIG, IIG, pipe 1, pipe 2, consumer (this process). */
  names: string[];
  pids: number[];
  /** Highest VmHWM seen of IIG, RIG, pipe 1, pipe 2. */
  hwm: number[];
  /** A new consumer HTTP client (its own connections; with TLS presenting the consumer's certificate). */
  consumer(): Dispatcher;
  stop(): Promise<void>;
}
const [IDS, RIG, IIG, PIPE1, PIPE2, CONSUMER] = [0, 1, 2, 3, 4, 5];
const RELAY_PROCS = [IDS, RIG, IIG, CONSUMER];
const PIPE_PROCS = [IDS, PIPE1, PIPE2, CONSUMER];

let pki: TestPki | undefined;

/** Protocol and cipher a TLS client with `o` gets from the server at `url`. */
function negotiated(url: string, o: { name: string; ciphers?: string }): Promise<string> {
  const u = new URL(url);
  return new Promise((res, rej) => {
    const s = tlsConnect(
      {
        host: u.hostname,
        port: Number(u.port),
        ca: [readFileSync(pki!.ca)],
        cert: readFileSync(pki!.cert(o.name)),
        key: readFileSync(pki!.key(o.name)),
        ...(o.ciphers ? { ciphers: o.ciphers } : {}),
      },
      () => {
        res(`${s.getProtocol()} ${s.getCipher().name}`);
        s.end();
      },
    );
    s.once('error', rej);
  });
}

async function startChain(
  label: string,
  transport: Transport,
  seedDir: string,
  m: SeedManifest,
  maxDocs: number,
  env: Record<string, string> = {},
): Promise<Chain> {
  const tls = transport === 'tls';
  const profArgs = (role: string) => [
    ...GATEWAY_NODE_ARGS,
    ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', join(CPU_PROF, `${label}-${transport}-${role}`)] : []),
  ];
  const trust = (name: string) => ({ identity: { trustAnchors: [pki!.ca], names: [name] } });
  const proxyTls = (name: string, clientAuth: 'required' | 'optional'): ProxyTls => ({
    cert: pki!.cert(name),
    key: pki!.key(name),
    ca: pki!.ca,
    ciphers: DEFAULT_CIPHERS,
    serve: true,
    clientAuth,
  });
  const started: { stop(): Promise<void> }[] = [];
  const stop = async () => {
    await Promise.all(started.map((p) => p.stop()));
  };
  try {
    const ids = await spawnCommunity([seedDir], { env });
    started.push(ids);
    const pipe2 = await spawnProxy(ids.url, tls ? proxyTls('gw-b', 'required') : undefined);
    started.push(pipe2);
    const pipe1 = await spawnProxy(pipe2.url, tls ? proxyTls('gw-a', 'optional') : undefined);
    started.push(pipe1);
    const rig = await spawnGateway(
      'responding',
      {
        homeCommunityId: m.homeCommunityId,
        name: 'bench RIG',
        deadlineMs: 600_000,
        inboundLimits: BENCH_LIMITS,
        local: {
          imagingDocumentSources: [
            { repositoryUniqueId: m.idsRepositoryUniqueId, url: ids.ids, timeoutMs: 120_000 },
          ],
        },
        communities: [{ homeCommunityId: IIG_HOME, name: 'bench IIG', ...(tls ? trust('gw-a') : {}) }],
      },
      { ...env, ...(tls ? tlsEnv(pki!, 'gw-b', 'required') : {}) },
      profArgs('rig'),
    );
    started.push(rig);
    const iig = await spawnGateway(
      'initiating',
      {
        homeCommunityId: IIG_HOME,
        name: 'bench IIG',
        deadlineMs: 600_000,
        inboundLimits: BENCH_LIMITS,
        communities: [
          {
            homeCommunityId: m.homeCommunityId,
            name: 'bench community',
            endpoints: { rad75: { url: `${rig.url}/rad75`, timeoutMs: 120_000 } },
            maxDocumentsPerRequest: Math.max(4000, maxDocs),
            ...(tls ? trust('gw-b') : {}),
          },
        ],
        ...(tls ? { consumers: [{ name: 'bench PACS', ...trust('pacs') }] } : {}),
      },
      { ...env, ...(tls ? tlsEnv(pki!, 'gw-a', 'optional') : {}) },
      profArgs('iig'),
    );
    started.push(iig);
    const agents: Agent[] = [];
    const chain: Chain = {
      transport,
      relayUrl: `${iig.url}/rad69`,
      pipeUrl: `${pipe1.url}/ids`,
      ids,
      rig,
      iig,
      pipes: [pipe1, pipe2],
      hwm: [],
      names: ['IDS', 'RIG', 'IIG', 'pipe 1', 'pipe 2', 'consumer'],
      pids: [ids.proc.pid!, rig.proc.pid!, iig.proc.pid!, pipe1.proc.pid!, pipe2.proc.pid!, process.pid],
      consumer: () => {
        const a = tls ? pki!.client('pacs') : new Agent();
        agents.push(a);
        return a;
      },
      stop: async () => {
        await Promise.all(agents.map((a) => a.close()));
        await stop();
      },
    };
    if (tls) {
      // The same hops negotiate the same: consumer → IIG as consumer → pipe 1, IIG → RIG as pipe 1 → pipe 2.
      const hops = await Promise.all([
        negotiated(iig.url, { name: 'pacs' }),
        negotiated(pipe1.url, { name: 'pacs' }),
        negotiated(rig.url, { name: 'gw-a', ciphers: DEFAULT_CIPHERS }),
        negotiated(pipe2.url, { name: 'gw-a', ciphers: DEFAULT_CIPHERS }),
      ]);
      if (hops[0] !== hops[1] || hops[2] !== hops[3])
        throw new Error(`the chains negotiate different TLS: ${hops.join(' / ')}`);
      console.log(
        `  ${label} TLS: consumer → IIG and → pipe 1 ${hops[0]}; IIG → RIG and pipe 1 → pipe 2 ${hops[2]}; ` +
          `client certificates on both hops; RIG → IDS and pipe 2 → IDS plain http (inside the community)`,
      );
    }
    return chain;
  } catch (e) {
    await stop();
    throw e;
  }
}

/** What a plot shows of one measurement: relay and pipe samples of the same chain. */
interface Capture {
  title: string;
  names: string[];
  relay: Sample[];
  pipe: Sample[];
}
const captures: Capture[] = [];
const wantCapture = (kind: 'size' | 'concurrent') =>
  PLOT_FILE !== '' && !captures.some((c) => c.title.startsWith(kind));

/** Per-process deltas of CPU time and system calls between two looks. */
const delta = (u0: Usage[], u1: Usage[]): Usage[] =>
  u1.map((u, i) => ({
    cpu: u.cpu - u0[i].cpu,
    reads: u.reads - u0[i].reads,
    writes: u.writes - u0[i].writes,
  }));

/**
 * Runs `job` (all retrieves of one measurement) and returns its answers with per-process CPU use;
 * `capture` samples the processes meanwhile.
 */
async function measure(
  chain: Chain,
  job: (onBytes: (n: number) => void) => Promise<Answer[]>,
  capture?: Sample[],
): Promise<{ answers: Answer[]; use: Usage[]; ms: number }> {
  const look = () => chain.pids.map((p) => usage(p));
  let bytes = 0;
  const s = capture ? sampler(chain.pids, () => bytes) : undefined;
  const u0 = look();
  const t0 = performance.now();
  const answers = await job((n) => (bytes += n));
  const ms = performance.now() - t0;
  const u1 = look();
  if (s && capture) capture.push(...s.stop());
  return { answers, use: delta(u0, u1), ms };
}

const cpuPerGiB = (uses: Usage[][], i: number, mib: number) =>
  (median(uses.map((u) => u[i].cpu)) / mib) * 1024;

/** CPU-s per GiB of every process, gateways ÷ the pass-through hop standing for each, chain ÷ chain. */
function printCpu(label: string, relayUse: Usage[][], pipeUse: Usage[][], mib: number, names: string[]) {
  const per = (uses: Usage[][], procs: number[]) =>
    procs
      .map((i) => {
        const rd = median(uses.map((u) => u[i].reads)) / mib;
        const wr = median(uses.map((u) => u[i].writes)) / mib;
        return `${names[i]} ${cpuPerGiB(uses, i, mib).toFixed(2)} (${rd.toFixed(1)} reads, ${wr.toFixed(1)} writes per MiB)`;
      })
      .join(', ');
  console.log(`  CPU-s per GiB, relay: ${per(relayUse, RELAY_PROCS)}`);
  console.log(`  CPU-s per GiB, pipe: ${per(pipeUse, PIPE_PROCS)}`);
  const r = (a: number, b: number) => (cpuPerGiB(relayUse, a, mib) / cpuPerGiB(pipeUse, b, mib)).toFixed(3);
  // On a machine where all the processes compete for the cores, throughput follows total CPU time:
  // the ratio of the chains' CPU-seconds is a steadier estimate than wall-clock time on a busy host.
  const chain = (uses: Usage[][], procs: number[]) =>
    median(uses.map((u) => procs.reduce((t, i) => t + u[i].cpu, 0)));
  console.log(
    `  ${label} CPU ratios: IIG ÷ pipe 1 ${r(IIG, PIPE1)}, RIG ÷ pipe 2 ${r(RIG, PIPE2)} (goal ≤ 1.25); ` +
      `IDS relay ÷ pipe ${r(IDS, IDS)}, consumer ${r(CONSUMER, CONSUMER)}; ` +
      `pipe chain ÷ relay chain (all processes) ${(chain(pipeUse, PIPE_PROCS) / chain(relayUse, RELAY_PROCS)).toFixed(3)}`,
  );
  return { iig: Number(r(IIG, PIPE1)), rig: Number(r(RIG, PIPE2)) };
}

interface RowResult {
  relay: number;
  pipe: number;
  iigRss: number;
  rigRss: number;
}
/** Peak RSS of the 0.5 GiB row per transport (the baseline of the many-instance row). */
const halfGiB = new Map<Transport, RowResult>();
const sizeRows = new Map<string, RowResult>();

const rssLine = (peak: number[], base: number[], instances: number) => {
  const [iig, rig, p1, p2] = peak;
  const perInst = (i: number) => `${((peak[i] - base[i]) / instances / KiB).toFixed(2)} KiB`;
  return (
    `peak RSS IIG ${fmtMiB(iig)} (÷ pipe 1 ${(iig / p1).toFixed(2)}), RIG ${fmtMiB(rig)} (÷ pipe 2 ${(rig / p2).toFixed(2)}); ` +
    // With large instances this counts buffers too (an upper bound); with small ones it is per-instance state.
    `(peak − peak after a ${WARM}-instance warm-up ${fmtMiB(base[0])} / ${fmtMiB(base[1])}) per instance: ` +
    `IIG ${perInst(0)}, RIG ${perInst(1)}`
  );
};
/** VmHWM of IIG, RIG, pipe 1, pipe 2 (readable only while they live). */
const peaks = (chain: Chain) => {
  // VmHWM can read lower later (the kernel updates its high-water mark lazily): keep the highest seen.
  const now = [chain.iig.proc.pid!, chain.rig.proc.pid!, ...chain.pipes.map((p) => p.proc.pid!)].map(peakRss);
  chain.hwm = now.map((v, i) => Math.max(v, chain.hwm[i] ?? 0));
  return chain.hwm;
};

/** One study in one RAD-69, `RUNS` times alternating relay and pipe. */
async function sizeRow(
  row: string,
  label: string,
  chain: Chain,
  m: SeedManifest,
  study: Study,
  unit: string,
): Promise<RowResult> {
  const d = chain.consumer();
  const retrieve = (url: string, s: Study, onBytes?: (n: number) => void) =>
    retrieveRad69(url, s, VERIFY_ALL, { dispatcher: d, onBytes });
  const warm = studyRequest(m, WARM);
  await retrieve(chain.relayUrl, warm);
  await retrieve(chain.pipeUrl, warm);
  const base = peaks(chain);
  const relay: Answer[] = [];
  const pipe: Answer[] = [];
  const relayUse: Usage[][] = [];
  const pipeUse: Usage[][] = [];
  const capture =
    row !== 'many' && wantCapture('size')
      ? { title: `size: ${label}, ${chain.transport}, run 1`, names: chain.names, relay: [], pipe: [] }
      : undefined;
  if (capture) captures.push(capture);
  for (let r = 0; r < RUNS; r++) {
    const one = async (url: string, into: Answer[], uses: Usage[][], cap?: Sample[]) => {
      const x = await measure(chain, async (onBytes) => [await retrieve(url, study, onBytes)], cap);
      into.push(x.answers[0]);
      uses.push(x.use);
      return x.answers[0];
    };
    const a = await one(chain.relayUrl, relay, relayUse, r === 0 ? capture?.relay : undefined);
    const b = await one(chain.pipeUrl, pipe, pipeUse, r === 0 ? capture?.pipe : undefined);
    console.log(
      `  ${label} ${chain.transport} run ${r + 1}: relay ${mibs(a).toFixed(0)} MiB/s (${(a.ms / 1000).toFixed(2)} s), ` +
        `pipe ${mibs(b).toFixed(0)} MiB/s (${(b.ms / 1000).toFixed(2)} s), ratio ${(mibs(a) / mibs(b)).toFixed(3)}; ` +
        `${a.parts} parts, ${fmtMiB(a.bytes)}, ${a.hashed} SHA-1s checked per answer; ` +
        `body chunks ${(a.wireBytes / a.wireChunks / KiB).toFixed(1)} vs ${(b.wireBytes / b.wireChunks / KiB).toFixed(1)} KiB on average; ` +
        `peak RSS so far IIG ${fmtMiB(peaks(chain)[0])}, RIG ${fmtMiB(peaks(chain)[1])}`,
    );
  }
  const peak = peaks(chain);
  const relayRate = median(relay.map(mibs));
  const pipeRate = median(pipe.map(mibs));
  const best = (xs: Answer[]) => Math.max(...xs.map(mibs));
  const n = study.instances.size;
  const perSec = (xs: Answer[]) => median(xs.map((a) => a.parts / (a.ms / 1000)));
  console.log(
    `${label} ${chain.transport} (${n} × ${unit} = ${fmtMiB(study.bytes)}, ${RUNS} run(s)): ` +
      `relay ${relayRate.toFixed(0)} MiB/s (best ${best(relay).toFixed(0)}), pipe ${pipeRate.toFixed(0)} MiB/s (best ${best(pipe).toFixed(0)}), ` +
      `ratio ${(relayRate / pipeRate).toFixed(3)} (best/best ${(best(relay) / best(pipe)).toFixed(3)}; goal ≥ 0.85)` +
      (row === 'many'
        ? `; ${perSec(relay).toFixed(0)} vs ${perSec(pipe).toFixed(0)} instances/s, ratio ${(perSec(relay) / perSec(pipe)).toFixed(3)}`
        : ''),
  );
  const goal = { '2': ' (goal ≤ 256 MiB each)', many: ' (goal ≤ 1 KiB per instance)' }[row] ?? '';
  console.log(`  ${rssLine(peak, base, n)}${goal}`);
  printCpu(`${label} ${chain.transport}`, relayUse, pipeUse, study.bytes / MiB, chain.names);
  return { relay: relayRate, pipe: pipeRate, iigRss: peak[0], rigRss: peak[1] };
}

/** RAD-69 of a small study, many times: p50 and p90 latency, relay ÷ pipe. */
async function latencyRow(chain: Chain, m: SeedManifest): Promise<void> {
  const d = chain.consumer();
  const study = studyRequest(m, O.latencyInstances);
  const retrieve = (url: string) => retrieveRad69(url, study, VERIFY_ALL, { dispatcher: d });
  for (let i = 0; i < 3; i++) {
    await retrieve(chain.relayUrl);
    await retrieve(chain.pipeUrl);
  }
  const relay: number[] = [];
  const pipe: number[] = [];
  for (let r = 0; r < O.latencyReps; r++) {
    relay.push((await retrieve(chain.relayUrl)).ms);
    pipe.push((await retrieve(chain.pipeUrl)).ms);
  }
  const q = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
  console.log(
    `latency ${chain.transport} (RAD-69 of ${O.latencyInstances} × ${SIZE / KiB} KiB, ${O.latencyReps} reps alternating): ` +
      `p50 relay ${q(relay, 0.5).toFixed(1)} ms, pipe ${q(pipe, 0.5).toFixed(1)} ms, ratio ${(q(relay, 0.5) / q(pipe, 0.5)).toFixed(3)} (goal ≤ 1.5); ` +
      `p90 ${q(relay, 0.9).toFixed(1)} vs ${q(pipe, 0.9).toFixed(1)} ms, ratio ${(q(relay, 0.9) / q(pipe, 0.9)).toFixed(3)}`,
  );
}

/** `O.concurrent` consumers at once, each its own study and connection. */
async function concurrentRow(chain: Chain, m: SeedManifest): Promise<void> {
  const studies = Array.from({ length: O.concurrent }, (_, k) => studyRequest(m, SMALL, undefined, k));
  const ds = studies.map(() => chain.consumer());
  const warm = studyRequest(m, WARM);
  await retrieveRad69(chain.relayUrl, warm, VERIFY_ALL, { dispatcher: ds[0] });
  await retrieveRad69(chain.pipeUrl, warm, VERIFY_ALL, { dispatcher: ds[0] });
  const base = peaks(chain);
  const all = (url: string) => (onBytes: (n: number) => void) =>
    Promise.all(studies.map((s, i) => retrieveRad69(url, s, VERIFY_ALL, { dispatcher: ds[i], onBytes })));
  const capture = wantCapture('concurrent')
    ? {
        title: `concurrent: ${O.concurrent} consumers, ${chain.transport}`,
        names: chain.names,
        relay: [],
        pipe: [],
      }
    : undefined;
  if (capture) captures.push(capture);
  const relay: number[] = [];
  const pipe: number[] = [];
  const relayUse: Usage[][] = [];
  const pipeUse: Usage[][] = [];
  const bytes = studies.reduce((t, s) => t + s.bytes, 0);
  for (let r = 0; r < O.concurrentRuns; r++) {
    const a = await measure(chain, all(chain.relayUrl), r === 0 ? capture?.relay : undefined);
    const b = await measure(chain, all(chain.pipeUrl), r === 0 ? capture?.pipe : undefined);
    relay.push(bytes / MiB / (a.ms / 1000));
    pipe.push(bytes / MiB / (b.ms / 1000));
    relayUse.push(a.use);
    pipeUse.push(b.use);
    const slowest = (x: { answers: Answer[] }) => Math.max(...x.answers.map((y) => y.ms)) / 1000;
    const fastest = (x: { answers: Answer[] }) => Math.min(...x.answers.map((y) => y.ms)) / 1000;
    console.log(
      `  concurrent ${chain.transport} run ${r + 1}: relay ${relay[r].toFixed(0)} MiB/s (consumers done in ${fastest(a).toFixed(1)}–${slowest(a).toFixed(1)} s), ` +
        `pipe ${pipe[r].toFixed(0)} MiB/s (${fastest(b).toFixed(1)}–${slowest(b).toFixed(1)} s), ratio ${(relay[r] / pipe[r]).toFixed(3)}`,
    );
  }
  const peak = peaks(chain);
  const one = halfGiB.get(chain.transport);
  console.log(
    `concurrent ${chain.transport} (${O.concurrent} consumers × ${studies[0].instances.size} × ${SIZE / KiB} KiB = ${fmtMiB(bytes)}, ` +
      `${O.concurrentRuns} run(s)): aggregate relay ${median(relay).toFixed(0)} MiB/s, pipe ${median(pipe).toFixed(0)} MiB/s, ` +
      `ratio ${(median(relay) / median(pipe)).toFixed(3)}`,
  );
  console.log(
    `  ${rssLine(peak, base, studies.length * studies[0].instances.size)} (goal ≤ 400 MiB each)` +
      (one
        ? `; ÷ one consumer of 0.5 GiB: IIG ${(peak[0] / one.iigRss).toFixed(2)}, RIG ${(peak[1] / one.rigRss).toFixed(2)}`
        : ''),
  );
  printCpu(`concurrent ${chain.transport}`, relayUse, pipeUse, bytes / MiB, chain.names);
}

/** Throughput, RSS and CPU use over time, relay against pipe, per capture. */
function writePlot(file: string): void {
  const colors = ['#7f7f7f', '#d62728', '#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd'];
  const panels: PlotPanel[] = [];
  for (const c of captures) {
    const rate = (xs: Sample[]) =>
      xs
        .slice(1)
        .map((s, i): [number, number] => [
          s.t,
          (s.bytes - xs[i].bytes) / MiB / Math.max(1e-3, s.t - xs[i].t),
        ]);
    const cpu = (xs: Sample[], p: number) =>
      xs
        .slice(1)
        .map((s, i): [number, number] => [
          s.t,
          (100 * (s.cpu[p] - xs[i].cpu[p])) / Math.max(1e-3, s.t - xs[i].t),
        ]);
    const mem = (xs: Sample[], p: number) => xs.map((s): [number, number] => [s.t, s.rss[p] / MiB]);
    panels.push(
      {
        title: `${c.title}: consumer MiB/s (100 ms samples)`,
        yLabel: 'MiB/s',
        series: [
          { label: 'relay', color: colors[1], points: rate(c.relay) },
          { label: 'pipe', color: colors[2], points: rate(c.pipe), dashed: true },
        ],
      },
      {
        title: `${c.title}: RSS`,
        yLabel: 'MiB',
        series: [
          ...RELAY_PROCS.map((p) => ({
            label: `relay: ${c.names[p]}`,
            color: colors[p],
            points: mem(c.relay, p),
          })),
          ...PIPE_PROCS.filter((p) => p !== IDS && p !== CONSUMER).map((p) => ({
            label: `pipe: ${c.names[p]}`,
            color: colors[p],
            points: mem(c.pipe, p),
            dashed: true,
          })),
        ],
      },
      {
        title: `${c.title}: CPU use (100 % = one core)`,
        yLabel: '% of a core',
        series: [
          ...RELAY_PROCS.map((p) => ({
            label: `relay: ${c.names[p]}`,
            color: colors[p],
            points: cpu(c.relay, p),
          })),
          ...PIPE_PROCS.map((p) => ({
            label: `pipe: ${c.names[p]}`,
            color: colors[p],
            points: cpu(c.pipe, p),
            dashed: true,
          })),
        ],
      },
    );
  }
  writeFileSync(file, svgPlot(`retrieve relay vs pipe, node ${process.version}`, panels));
  // A plot nobody can open is a wrong answer too.
  try {
    execFileSync('xmllint', ['--noout', file], { stdio: 'pipe' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`${file} is not well-formed XML: ${String(e)}`, { cause: e });
    console.log('  (xmllint not installed: the plot was not checked)');
  }
  console.log(`plot: ${file} (${captures.map((c) => c.title).join('; ')})`);
}

async function main(): Promise<void> {
  const t0 = Date.now();
  // In smoke mode the concurrent consumers' studies are in the same seed (one set of processes fewer).
  const largeDir = await benchSeed(LARGE, SIZE, undefined, smoke ? O.concurrent : 1);
  const large = readManifest(largeDir);
  if (CPU_PROF) mkdirSync(CPU_PROF, { recursive: true });
  if (O.transports.includes('tls')) pki = makePki(['gw-a', 'gw-b', 'pacs'], 'relay-bench');
  console.log(
    `retrieve relay, node ${process.version}, ${RUNS} run(s) per size, transports ${O.transports.join(' and ')}, ` +
      `rows ${ROWS.join(', ')}, SHA-1 of ${VERIFY_ALL ? 'every' : 'every 16th'} instance checked by the consumer`,
  );
  const row = async (
    name: string,
    seed: string,
    m: SeedManifest,
    maxDocs: number,
    f: (c: Chain) => Promise<void>,
    env?: Record<string, string>,
  ) => {
    if (!ROWS.includes(name)) return;
    // Smoke: both transports for the size rows, the first (TLS unless --no-tls) for the others.
    const transports = smoke && name !== '2' && name !== '0.5' ? O.transports.slice(0, 1) : O.transports;
    for (const t of transports) {
      // Fresh processes for every row, so that each peak RSS belongs to one row; in smoke mode, where
      // only the answers count, the rows over one seed share their processes (seconds, not minutes).
      const key = `${seed} ${t} ${JSON.stringify(env ?? {})}`;
      const chain = (smoke && kept.get(key)) || (await startChain(name, t, seed, m, maxDocs, env));
      if (smoke) kept.set(key, chain);
      try {
        await f(chain);
      } catch (e) {
        // One row failing does not lose the others' figures; the run still fails.
        failed.push(`${name} ${t}`);
        console.error(`row ${name} ${t} failed:`, e);
      } finally {
        if (!smoke) await chain.stop();
      }
    }
  };
  const kept = new Map<string, Chain>();
  const failed: string[] = [];
  try {
    const sizes: [string, string, number][] = [
      ['2', smoke ? fmtMiB(LARGE * SIZE) : '2 GiB', LARGE],
      ['0.5', smoke ? fmtMiB(SMALL * SIZE) : '0.5 GiB', SMALL],
    ];
    for (const [name, label, count] of sizes) {
      await row(name, largeDir, large, count, async (c) => {
        const r = await sizeRow(name, label, c, large, studyRequest(large, count), `${SIZE / KiB} KiB`);
        sizeRows.set(`${name} ${c.transport}`, r);
        if (name === '0.5') halfGiB.set(c.transport, r);
      });
    }
    for (const t of O.transports) {
      const big = sizeRows.get(`2 ${t}`);
      const small = sizeRows.get(`0.5 ${t}`);
      if (big && small)
        console.log(
          `peak RSS ratio ${sizes[0][1]} / ${sizes[1][1]} ${t}: initiating gateway ${(big.iigRss / small.iigRss).toFixed(3)}, ` +
            `responding gateway ${(big.rigRss / small.rigRss).toFixed(3)} (goal ≤ 1.1)`,
        );
    }
    if (O.transports.length === 2)
      for (const name of ['2', '0.5']) {
        const a = sizeRows.get(`${name} tls`);
        const b = sizeRows.get(`${name} plain`);
        if (a && b)
          console.log(
            `TLS ÷ plain, ${name === '2' ? sizes[0][1] : sizes[1][1]}: relay ${(a.relay / b.relay).toFixed(3)}, pipe ${(a.pipe / b.pipe).toFixed(3)}`,
          );
      }
    await row('latency', largeDir, large, O.latencyInstances, (c) => latencyRow(c, large));
    if (ROWS.includes('many')) {
      const manyDir = await benchSeed(O.many, O.manySize);
      const many = readManifest(manyDir);
      await row(
        'many',
        manyDir,
        many,
        O.many,
        async (c) => {
          const r = await sizeRow(
            'many',
            `${O.many} instances`,
            c,
            many,
            studyRequest(many, O.many),
            `${O.manySize / KiB} KiB`,
          );
          const half = halfGiB.get(c.transport);
          if (half)
            console.log(
              `  peak RSS ${O.many} × ${O.manySize / KiB} KiB ÷ ${sizes[1][1]} (${SMALL} × ${SIZE / KiB} KiB) ${c.transport}: ` +
                `IIG ${(r.iigRss / half.iigRss).toFixed(3)}, RIG ${(r.rigRss / half.rigRss).toFixed(3)} (memory independent of instance count: ≈ 1)`,
            );
        },
        { XCAI_MAX_REQUEST_BYTES: '64MiB' },
      );
    }
    if (ROWS.includes('concurrent')) {
      const concDir = smoke ? largeDir : await benchSeed(SMALL, SIZE, undefined, O.concurrent);
      const conc = readManifest(concDir);
      await row('concurrent', concDir, conc, SMALL, (c) => concurrentRow(c, conc));
    }
  } finally {
    await Promise.all([...kept.values()].map((c) => c.stop()));
    pki?.remove();
  }
  if (PLOT_FILE) writePlot(PLOT_FILE);
  if (smoke && !O.plot) rmSync(join(PLOT_FILE, '..'), { recursive: true, force: true });
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (failed.length) throw new Error(`rows failed: ${failed.join(', ')}`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e);
    process.exit(1);
  },
);
