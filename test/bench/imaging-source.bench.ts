/**
 * imaging-source bridge benchmark (issue 15), run by hand:
 * `node test/bench/run.js imaging-source [--smoke]` (after `npm run build`; needs Debian's `orthanc`,
 * `orthanc-dicomweb` and `unshare`). Options: `--runs N` (default 3), `--verify all|sample` (SHA-1 of
 * every instance, or of every 16th; default sample), `--only 2|0.5` (one size only),
 * `--concurrency N` (the bridge's local.archive.maxConcurrent and the direct client's, default 4),
 * `--bridge-node-args "ARGS"` (extra node options for the bridge).
 *
 * A real Orthanc (DICOMweb plugin) in its own network namespace (test/support/orthanc.ts) holds two
 * generated studies, STOWed at the start: 4,000 × 512 KiB (2 GiB) and 1,000 × 512 KiB (0.5 GiB).
 * For each study, every instance is retrieved
 *   - through the bridge: bench (consumer) → RAD-69 → imaging-source bridge (its own process) →
 *     WADO-RS → Orthanc, one RAD-69 for the whole study, the consumer parsing the MTOM answer;
 *   - straight from Orthanc: bench → a plain Node http pass-through process (so both chains have the
 *     same processes) → WADO-RS → Orthanc, the same requests the bridge makes (one per instance, the
 *     same transfer syntax, the same number at once), the consumer parsing each multipart answer.
 * The consumer does the same work on both (counts parts and bytes, checks SHA-1s against the seed
 * manifest). Each fresh bridge process is first warmed up with 256 instances of the other study. The
 * two alternate, run after run; figures are medians. Printed: MiB/s of both, the ratio
 * bridge / direct (goal ≥ 0.8), CPU-seconds per GiB of every process, the bridge's peak RSS (VmHWM)
 * per study on a fresh bridge process, and the ratio 2 GiB / 0.5 GiB (goal ≤ 1.1).
 * The machine may be shared: read the ratios, not the absolute figures.
 * `--smoke`: 40 and 10 instances (20 and 5 MiB, past the bridge's 16 MiB lookahead), one run each, a
 * few seconds of retrieval — only the functional checks count there (non-zero exit on a wrong answer).
 */
import { join } from 'node:path';
import { request } from 'undici';
import { parseMultipart } from '@xcai/shared';
import {
  arg,
  benchSeed,
  checkPart,
  EXPLICIT,
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
  type Proc,
  type Study,
  type Usage,
} from '../support/bench';
import { orthancAvailable, startOrthanc, type RunningOrthanc } from '../support/orthanc';
import { peakRss, spawnGateway, type GatewayProcess } from '../support/processes';

const {
  smoke,
  runs: RUNS,
  verifyAll: VERIFY_ALL,
  only: ONLY,
  size: SIZE,
  large: LARGE,
  small: SMALL,
} = retrieveBenchOptions();
const CONCURRENCY = Number(arg('concurrency', '4'));
/** Extra node options for the bridge (e.g. V8 heap flags), space-separated. */
const BRIDGE_NODE_ARGS = arg('bridge-node-args', '').split(' ').filter(Boolean);
/** The second study's UIDs come from another OID than the first's (the default benchmark OID). */
const SMALL_OID = '1.3.6.1.4.1.21367.13.70.193';
const BRIDGE_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.194';
const BRIDGE_IDS = '1.3.6.1.4.1.21367.13.70.194.3';

interface Timed {
  ms: number;
  bytes: number;
}

/**
 * WADO-RS straight from the archive: one request per instance, `CONCURRENCY` at once, each answer
 * parsed as multipart/related and its part checked as the RAD-69 consumer checks it.
 */
async function retrieveDirect(base: string, auth: string, study: Study): Promise<Timed> {
  const work = study.series.flatMap((s) =>
    s.instances.map((i) => ({
      path: `/studies/${study.studyInstanceUid}/series/${s.seriesInstanceUid}/instances/${i.sopInstanceUid}`,
      inst: i,
    })),
  );
  let next = 0;
  let bytes = 0;
  let checked = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < work.length) {
      const { path, inst } = work[next++];
      const res = await request(`${base}${path}`, {
        headers: {
          authorization: auth,
          accept: `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT}`,
        },
      });
      if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode}`);
      const reader = parseMultipart(res.body as never, String(res.headers['content-type']), {
        maxPartHeaderBytes: 16 * KiB,
        maxParts: 1,
        maxRootBytes: 64 * MiB,
        maxTotalBytes: 2 ** 40,
      });
      const r = await reader.next();
      if (r.done) throw new Error(`${path}: an empty answer`);
      const hash = VERIFY_ALL || checked++ % 16 === 0;
      const n = await checkPart(r.value.body, inst.sopInstanceUid, inst, hash);
      bytes += n; // after the await: the workers interleave
      if (!(await reader.next()).done) throw new Error(`${path}: more than one part`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = performance.now() - t0;
  if (bytes !== study.bytes) throw new Error(`direct: ${bytes} bytes, expected ${study.bytes}`);
  return { ms, bytes };
}

async function spawnBridge(orthanc: RunningOrthanc): Promise<GatewayProcess> {
  return spawnGateway(
    'imaging-source',
    {
      homeCommunityId: BRIDGE_HOME,
      name: 'bench bridge',
      deadlineMs: 600_000,
      local: {
        archive: {
          url: orthanc.dicomWeb,
          repositoryUniqueId: BRIDGE_IDS,
          auth: { basicFile: orthanc.basicFile },
          maxConcurrent: CONCURRENCY,
          timeoutMs: 120_000,
        },
      },
    },
    {},
    BRIDGE_NODE_ARGS,
  );
}

interface SizeResult {
  label: string;
  bridge: number;
  direct: number;
  rss: number;
}

async function measure(
  label: string,
  study: Study,
  orthanc: RunningOrthanc,
  proxy: Proc,
  warm: Study,
): Promise<SizeResult> {
  // A fresh bridge process per study, so its peak RSS belongs to that study.
  const bridge = await spawnBridge(orthanc);
  const { forwarder, orthanc: orthancPid } = orthanc.pids();
  const procs: [string, number | undefined][] = [
    ['bridge', bridge.proc.pid],
    ['pass-through', proxy.proc.pid],
    ['Orthanc', orthancPid],
    ['namespace forwarder', forwarder],
    ['consumer + host forwarder', process.pid],
  ];
  const sample = (): Usage[] =>
    procs.map(([, pid]) => (pid ? usage(pid) : { cpu: NaN, reads: NaN, writes: NaN }));
  const auth = `Basic ${Buffer.from(orthanc.credentials).toString('base64')}`;
  const direct = `${proxy.url}${new URL(orthanc.dicomWeb).pathname}`;
  const rad69 = `${bridge.url}/rad69`;
  const viaBridge: Timed[] = [];
  const viaDirect: Timed[] = [];
  const bridgeUse: number[][] = [];
  const directUse: number[][] = [];
  const timed = async (run: () => Promise<Timed>, into: Timed[], uses: number[][]) => {
    const u0 = sample();
    const a = await run();
    const u1 = sample();
    into.push(a);
    uses.push(u1.map((u, i) => u.cpu - u0[i].cpu));
    return a;
  };
  let rss: number;
  try {
    if (!smoke) {
      await retrieveRad69(rad69, warm);
      await retrieveDirect(direct, auth, warm);
    }
    for (let r = 0; r < RUNS; r++) {
      const b = () => timed(() => retrieveRad69(rad69, study, VERIFY_ALL), viaBridge, bridgeUse);
      const d = () => timed(() => retrieveDirect(direct, auth, study), viaDirect, directUse);
      // Alternate which goes first, so neither always meets a warmer page cache.
      let x: Timed, y: Timed;
      if (r % 2 === 0) {
        x = await b();
        y = await d();
      } else {
        y = await d();
        x = await b();
      }
      console.log(
        `  ${label} run ${r + 1}: bridge ${mibs(x).toFixed(0)} MiB/s (${(x.ms / 1000).toFixed(2)} s), ` +
          `direct ${mibs(y).toFixed(0)} MiB/s (${(y.ms / 1000).toFixed(2)} s), ratio ${(mibs(x) / mibs(y)).toFixed(3)}; ` +
          `bridge peak RSS so far ${fmtMiB(peakRss(bridge.proc.pid!))}`,
      );
    }
  } finally {
    rss = peakRss(bridge.proc.pid!); // VmHWM can only be read while the process lives
    await bridge.stop();
  }
  const bridgeRate = median(viaBridge.map(mibs));
  const directRate = median(viaDirect.map(mibs));
  const gib = study.bytes / (1024 * MiB);
  const cpu = (uses: number[][], skip: string) =>
    procs
      .map(([n], i) => (n === skip ? '' : `${n} ${(median(uses.map((u) => u[i])) / gib).toFixed(2)}`))
      .filter(Boolean)
      .join(', ');
  const chain = (uses: number[][], skip: number) =>
    median(uses.map((u) => u.reduce((t, x, i) => (i === skip || Number.isNaN(x) ? t : t + x), 0)));
  console.log(
    `${label} (${study.instances.size} × ${SIZE / KiB} KiB = ${fmtMiB(study.bytes)}, ${RUNS} run(s), ${CONCURRENCY} at once): ` +
      `bridge ${bridgeRate.toFixed(0)} MiB/s, direct WADO-RS ${directRate.toFixed(0)} MiB/s, ` +
      `ratio ${(bridgeRate / directRate).toFixed(3)} (goal ≥ 0.8)`,
  );
  console.log(`  CPU-s per GiB, through the bridge: ${cpu(bridgeUse, 'pass-through')}`);
  console.log(`  CPU-s per GiB, direct: ${cpu(directUse, 'bridge')}`);
  console.log(
    `  CPU-time ratio (direct chain / bridge chain, all processes): ${(chain(directUse, 0) / chain(bridgeUse, 1)).toFixed(3)}`,
  );
  console.log(`  bridge peak RSS ${fmtMiB(rss)}`);
  return { label, bridge: bridgeRate, direct: directRate, rss };
}

async function main(): Promise<void> {
  if (!orthancAvailable())
    throw new Error('needs Orthanc with its DICOMweb plugin (apt: orthanc orthanc-dicomweb) and unshare');
  const t0 = Date.now();
  const largeDir = await benchSeed(LARGE, SIZE);
  const smallDir = await benchSeed(SMALL, SIZE, SMALL_OID);
  const [large, small] = [readManifest(largeDir), readManifest(smallDir)];
  const orthanc = await startOrthanc();
  let proxy: Proc | undefined;
  const results: SizeResult[] = [];
  try {
    const t1 = Date.now();
    const files = [largeDir, smallDir].flatMap((dir) =>
      readManifest(dir).patients.flatMap((p) =>
        p.studies.flatMap((s) => s.series.flatMap((r) => r.instances.map((i) => join(dir, i.path)))),
      ),
    );
    const stored = await orthanc.stow(files);
    if (stored !== files.length) throw new Error(`Orthanc stored ${stored} of ${files.length} instances`);
    console.log(
      `STOW-RS of ${files.length} instances into Orthanc: ${((Date.now() - t1) / 1000).toFixed(1)} s`,
    );
    proxy = await spawnProxy(new URL(orthanc.dicomWeb).origin);
    console.log(
      `imaging-source bridge vs WADO-RS direct, node ${process.version}, ${RUNS} run(s) per study, ` +
        `SHA-1 of ${VERIFY_ALL ? 'every' : 'every 16th'} instance checked by the consumer`,
    );
    // Each fresh bridge is warmed up (JIT, connections) with 256 instances of the other study.
    const sizes: [string, Study, Study][] = [
      [
        smoke ? fmtMiB(LARGE * SIZE) : '2 GiB',
        studyRequest(large, LARGE, BRIDGE_IDS),
        studyRequest(small, 256, BRIDGE_IDS),
      ],
      [
        smoke ? fmtMiB(SMALL * SIZE) : '0.5 GiB',
        studyRequest(small, SMALL, BRIDGE_IDS),
        studyRequest(large, 256, BRIDGE_IDS),
      ],
    ];
    for (const [label, study, warm] of sizes) {
      if (ONLY && !label.startsWith(ONLY)) continue;
      results.push(await measure(label, study, orthanc, proxy, warm));
    }
  } finally {
    await proxy?.stop();
    await orthanc.stop();
  }
  if (results.length === 2) {
    const [big, little] = results;
    console.log(
      `bridge peak RSS ratio ${big.label} / ${little.label}: ${(big.rss / little.rss).toFixed(3)} (goal ≤ 1.1); ` +
        `throughput ratio bridge / direct: ${big.label} ${(big.bridge / big.direct).toFixed(3)}, ` +
        `${little.label} ${(little.bridge / little.direct).toFixed(3)} (goal ≥ 0.8)`,
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
