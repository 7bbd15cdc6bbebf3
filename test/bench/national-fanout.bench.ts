/**
 * Fan-out at national scale (issue 16), run by hand: `node test/bench/run.js national-fanout [--smoke]`
 * (after `npm run build`). Options: --communities N (500; smoke 50), --queries N (30; smoke 3),
 * --parallel N (queries in flight at once: 1), --seed N, --timeout MS (the per-call
 * timeout: 4000; smoke 3000), --cpu-prof DIR (the gateway writes a CPU profile there).
 *
 * A real Initiating Gateway process with a directory of N communities (each with a certificate
 * identity) fans ITI-18 out as ITI-38 over mutual TLS to a community farm (test/support/community-farm.ts:
 * every community its own HTTPS server on its own loopback address; answers after a lognormal delay,
 * median 150 ms, p99 2 s; 2 % never answer, 1 % answer with a SOAP fault; repeatable per seed).
 *
 * Printed, with the goals:
 * - directory load + validate time of the N-entry YAML file ÷ 1 s (goal ≤ 1);
 * - per query: ITI-18 latency ÷ the slowest community's time — its answer time, or the per-call
 *   timeout when a community never answered (the earliest any gateway can give up on it): p50 ≤ 1.2,
 *   p99 shown; also ÷ the slowest answering community alone, for information;
 * - gateway peak RSS (goal ≤ 300 MiB);
 * - sockets the gateway holds (sampled): per community endpoint ≤ its maxConcurrent, in all ≤ the
 *   sum of the limits;
 * - connection reuse: TLS handshakes (and resumed sessions) at the farm ÷ requests.
 * Exits non-zero when an answer does not report every timed-out community as XDSUnavailableCommunity
 * and every faulted one as an error (at the community), reports any other community as failed, or
 * lacks the DocumentEntries the farm sent.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { Action, encodeEnvelope, encodeFindDocumentsRequest } from '@xcai/shared';
import { validateDirectoryFile } from '@xcai/shared/src/cli/validate';
import { arg, fmtMiB, MiB } from '../support/bench';
import { makePki } from '../support/certs';
import { farmHost, spawnCommunityFarm, type QueryRecord } from '../support/community-farm';
import { BENCH_LIMITS } from '../support/federation';
import {
  nationalDirectory,
  nationalDirectoryYaml,
  nationalName,
  NATIONAL_HOME,
} from '../support/national-directory';
import { peakRss, spawnGateway, tlsEnv } from '../support/processes';
import { processSockets } from '../support/sockets';

const smoke = process.argv.includes('--smoke');
const N = Number(arg('communities', smoke ? '50' : '500'));
const QUERIES = Number(arg('queries', smoke ? '3' : '30'));
const PARALLEL = Number(arg('parallel', '1'));
const SEED = Number(arg('seed', '16'));
const TIMEOUT_MS = Number(arg('timeout', smoke ? '3000' : '4000'));
/** The directory's default per-endpoint connection limit (directory/load.ts). */
const MAX_CONCURRENT = 16;
const UNAVAILABLE = 'XDSUnavailableCommunity';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

interface Answer {
  status: string;
  errors: { errorCode: string; location?: string }[];
  entries: number;
}

function readAnswer(xml: string): Answer {
  const status = /AdhocQueryResponse[^>]*status="[^"]*:([A-Za-z]+)"/.exec(xml)?.[1] ?? '?';
  const errors = [...xml.matchAll(/<rs:RegistryError\b([^>]*)\/?>/g)].map((m) => ({
    errorCode: /errorCode="([^"]*)"/.exec(m[1])?.[1] ?? '',
    location: /location="([^"]*)"/.exec(m[1])?.[1],
  }));
  return { status, errors, entries: (xml.match(/<rim:ExtrinsicObject\b/g) ?? []).length };
}

/** What is wrong with an answer, given what the farm did (empty: nothing). */
function check(a: Answer, rec: QueryRecord): string[] {
  const bad: string[] = [];
  if (rec.asked !== N) bad.push(`${rec.asked} of ${N} communities were asked`);
  const at = (home: string) => a.errors.filter((e) => e.location === home);
  for (const home of rec.timedOut)
    if (!at(home).some((e) => e.errorCode === UNAVAILABLE))
      bad.push(`timed-out ${home} is not reported as ${UNAVAILABLE}`);
  for (const home of rec.faulted) if (at(home).length === 0) bad.push(`faulted ${home} is not reported`);
  const failed = new Set([...rec.timedOut, ...rec.faulted]);
  for (const e of a.errors)
    if (e.location?.startsWith(`${NATIONAL_HOME}.`) && !failed.has(e.location))
      bad.push(`${e.location} answered but is reported: ${e.errorCode}`);
  if (a.entries !== rec.entries)
    bad.push(`${a.entries} DocumentEntries, the communities sent ${rec.entries}`);
  const want = failed.size ? 'PartialSuccess' : 'Success';
  if (a.status !== want) bad.push(`status ${a.status}, expected ${want}`);
  return bad;
}

/** Stops what main started (also when it fails), most recent first. */
const cleanup: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  // Communities share a certificate ten at a time (a host serving several), each naming its own.
  const GROUP = 10;
  const groups = Array.from({ length: Math.ceil(N / GROUP) }, (_, g) =>
    Array.from({ length: Math.min(GROUP, N - g * GROUP) }, (_, k) => g * GROUP + k),
  );
  const pki = makePki(
    [
      'ig',
      'pacs',
      ...groups.map(
        (g, k) => `farm-${k}:${g.map((i) => `IP:${farmHost(i)},DNS:${nationalName(i)}`).join(',')}`,
      ),
    ],
    'national',
  );
  cleanup.push(async () => pki.remove());
  const farm = await spawnCommunityFarm({
    communities: N,
    seed: SEED,
    homePrefix: NATIONAL_HOME,
    certs: groups.map((_, k) => ({ cert: pki.cert(`farm-${k}`), key: pki.key(`farm-${k}`) })),
    certGroup: GROUP,
    ca: pki.ca,
    maxAnswerMs: Math.round(TIMEOUT_MS * 0.75),
    timeoutShare: 0.02,
    faultShare: 0.01,
    keepAliveMs: 15_000,
  });
  cleanup.unshift(() => farm.stop());
  const dirOptions = {
    communities: N,
    base: (i: number) => farm.endpoints[i].url.replace(/\/iti38$/, ''),
    trustAnchors: [pki.ca],
    timeoutMs: TIMEOUT_MS,
    consumers: [{ name: 'PACS', identity: { trustAnchors: [pki.ca], names: ['pacs'] } }],
  };

  // The directory file as an operator writes it (YAML), loaded and validated as `xcai validate` does.
  const dir = mkdtempSync(join(tmpdir(), 'xcai-national-'));
  const yamlFile = join(dir, 'directory.yaml');
  writeFileSync(yamlFile, nationalDirectoryYaml(dirOptions));
  const jsonFile = join(dir, 'directory.json');
  writeFileSync(jsonFile, JSON.stringify(nationalDirectory(dirOptions), null, 2));
  const timeLoads = (file: string) => {
    const loads: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      const v = validateDirectoryFile(file);
      loads.push(performance.now() - t0);
      if (!v.ok || v.summary?.communities !== N)
        throw new Error(`directory invalid: ${v.problems.join('; ')}`);
    }
    return { first: loads[0], after: pct(loads.slice(1), 50) };
  };
  const yamlLoad = timeLoads(yamlFile);
  const jsonLoad = timeLoads(jsonFile);
  const kib = (f: string) => (statSync(f).size / 1024).toFixed(0);
  for (const [kind, file, t] of [
    ['YAML', yamlFile, yamlLoad],
    ['JSON', jsonFile, jsonLoad],
  ] as const)
    console.log(
      `directory of ${N} communities as ${kind} (${kib(file)} KiB): load + validate ${t.first.toFixed(0)} ms first, ` +
        `${t.after.toFixed(0)} ms after; first ÷ 1 s = ${(t.first / 1000).toFixed(3)} (goal ≤ 1)`,
    );

  const profDir = arg('cpu-prof', '');
  const ig = await spawnGateway(
    'initiating',
    { ...nationalDirectory(dirOptions), inboundLimits: BENCH_LIMITS },
    tlsEnv(pki, 'ig', 'optional'),
    profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
  );
  cleanup.unshift(() => ig.stop());
  const igPid = ig.proc.pid as number;
  const client = pki.client('pacs');
  cleanup.unshift(() => client.close());
  const farmOrigins = new Set(farm.endpoints.map((e) => new URL(e.url).host));

  let maxSockets = 0;
  let maxPerEndpoint = 0;
  let maxOutbound = 0;
  const sample = () => {
    if (ig.proc.exitCode !== null) return;
    const s = processSockets(igPid);
    maxSockets = Math.max(maxSockets, s.total);
    let outbound = 0;
    for (const [remote, n] of s.byRemote) {
      if (!farmOrigins.has(remote)) continue;
      outbound += n;
      maxPerEndpoint = Math.max(maxPerEndpoint, n);
    }
    maxOutbound = Math.max(maxOutbound, outbound);
  };

  let failures: string[] = [];
  const one = async (k: number) => {
    const patient = `NAT${k}^^^&1.3.6.1.4.1.21367.13.20.1000&ISO`;
    const body = encodeEnvelope({
      action: Action.ITI18,
      body: encodeFindDocumentsRequest(patient),
      request: true,
    });
    const t0 = performance.now();
    const res = await request(`${ig.url}/iti18`, {
      method: 'POST',
      dispatcher: client,
      headers: { 'content-type': 'application/soap+xml' },
      body,
      headersTimeout: 120_000,
    });
    const xml = await res.body.text();
    const ms = performance.now() - t0;
    const rec = await farm.query(patient);
    if (!rec) {
      const log = ig.output.filter((l) => !l.includes('sub-request failed')).slice(-12);
      throw new Error(
        `query ${k}: no community was asked (HTTP ${res.statusCode}: ${/codeContext="[^"]*"/.exec(xml)?.[0] ?? xml.slice(0, 300)}); ` +
          `farm: ${JSON.stringify(await farm.counters())}; gateway log:\n${log.join('\n').slice(-3000)}`,
      );
    }
    const bad = check(readAnswer(xml), rec);
    if (bad.length)
      failures.push(
        `query ${k}: ${bad.slice(0, 3).join('; ')}${bad.length > 3 ? ` (+${bad.length - 3})` : ''}`,
      );
    const slowest = rec.timedOut.length ? Math.max(rec.slowestAnswerMs, TIMEOUT_MS) : rec.slowestAnswerMs;
    return {
      ms,
      slowest,
      slowestAnswer: rec.slowestAnswerMs,
      timedOut: rec.timedOut.length,
      faulted: rec.faulted.length,
    };
  };
  const run = async (from: number, count: number, parallel = PARALLEL) => {
    const out: Awaited<ReturnType<typeof one>>[] = [];
    let next = from;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < from + count) out.push(await one(next++));
      }),
    );
    return out;
  };

  // Warm-up, one query at a time: the first fan-out opens the connections (full TLS handshakes).
  const warm = smoke ? 1 : 2;
  const warmResults = await run(0, warm, 1).catch((e: Error) => {
    throw new Error(
      `${e.message}; the gateway's last log lines:\n${ig.output.slice(-8).join('\n').slice(-4000)}`,
    );
  });
  // A cold gateway may miss answers while it opens hundreds of connections: said, not counted.
  const warmFailures = failures;
  failures = [];
  const cold = await farm.counters();
  await farm.reset();
  const sampler = setInterval(sample, 200);
  const results = await run(1000, QUERIES);
  clearInterval(sampler);
  sample();
  const c = await farm.counters();
  const rss = peakRss(igPid);
  // Where the memory is, from the gateway's own metrics.
  const metrics = ig.mgmtUrl ? await (await request(`${ig.mgmtUrl}/metrics`)).body.text() : '';
  const metric = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);

  const ratios = results.map((r) => r.ms / r.slowest);
  const answerRatios = results.map((r) => r.ms / r.slowestAnswer);
  const lat = results.map((r) => r.ms);
  console.log(
    `ITI-18 to ${N} communities over mutual TLS, ${QUERIES} queries, ${PARALLEL} at a time (per-call timeout ${TIMEOUT_MS} ms; ` +
      `${results.reduce((n, r) => n + r.timedOut, 0)} time-outs, ${results.reduce((n, r) => n + r.faulted, 0)} faults in all)`,
  );
  console.log(
    `  latency p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms; slowest community p50 ${pct(
      results.map((r) => r.slowest),
      50,
    ).toFixed(0)} ms`,
  );
  console.log(
    `  latency ÷ slowest community (answer or timeout): p50 ${pct(ratios, 50).toFixed(3)} (goal ≤ 1.2), p99 ${pct(ratios, 99).toFixed(3)}`,
  );
  console.log(
    `  latency ÷ slowest answering community (for information): p50 ${pct(answerRatios, 50).toFixed(3)}, p99 ${pct(answerRatios, 99).toFixed(3)}`,
  );
  console.log(
    `  gateway peak RSS ${fmtMiB(rss)} ÷ 300 MiB = ${(rss / (300 * MiB)).toFixed(3)} (goal ≤ 1); at the end: RSS ` +
      `${fmtMiB(metric('process_resident_memory_bytes'))}, JS heap ${fmtMiB(metric('nodejs_heap_size_used_bytes'))} used of ` +
      `${fmtMiB(metric('nodejs_heap_size_total_bytes'))}, external ${fmtMiB(metric('nodejs_external_memory_bytes'))}`,
  );
  console.log(
    `  gateway sockets: at most ${maxSockets} open, ${maxOutbound} to the communities (limit ${N} × ${MAX_CONCURRENT} = ${N * MAX_CONCURRENT}), ` +
      `at most ${maxPerEndpoint} to one community (limit ${MAX_CONCURRENT}); ratio ${(maxPerEndpoint / MAX_CONCURRENT).toFixed(3)} (goal ≤ 1)`,
  );
  console.log(
    `  connection reuse: warm-up ${cold.handshakes} handshakes for ${cold.requests} requests; measured ${c.handshakes} handshakes ` +
      `(${c.resumed} resumed sessions) for ${c.requests} requests = ${(c.handshakes / Math.max(1, c.requests)).toFixed(3)} per request; ` +
      `most requests in flight at one community ${c.maxInFlightPerCommunity}`,
  );
  const goals = [
    pct(ratios, 50) <= 1.2,
    yamlLoad.first <= 1000 && jsonLoad.first <= 1000,
    rss <= 300 * MiB,
    maxPerEndpoint <= MAX_CONCURRENT && maxOutbound <= N * MAX_CONCURRENT,
  ];
  console.log(
    `  warm-up (not measured, one at a time): latency ${warmResults.map((r) => r.ms.toFixed(0)).join(', ')} ms` +
      (warmFailures.length
        ? `; ${warmFailures.length} answer(s) wrong, first: ${warmFailures[0].slice(0, 200)}`
        : ''),
  );
  console.log(`  goals met: ${goals.filter(Boolean).length} of ${goals.length}`);

  if (failures.length) {
    throw new Error(`${failures.length} answer(s) wrong:\n  ${failures.slice(0, 10).join('\n  ')}`);
  }
}

main()
  .then(
    () => 0,
    (e: Error) => {
      console.error(e);
      return 1;
    },
  )
  .then(async (code) => {
    for (const c of cleanup) await c().catch(() => undefined);
    process.exit(code);
  });
