/**
 * Soak (issue 16): mixed traffic through the `npm start` federation for `--minutes N` (default 10;
 * `--smoke`: 30 s, as CI runs it). Every gateway and the Audit Record Repository is its own process;
 * the gateways keep their correlation state in Redis under a key prefix of this run; A asks C
 * asynchronously (DEMO_ASYNC=C) and 30 % of the consumer's requests carry a non-anonymous ReplyTo.
 *
 * Traffic: ITI-18 per patient, ITI-43 of the KOS manifests, RAD-69 of one instance ("small") and of
 * whole studies ("large"), sync and async; 5 % hostile inputs from test/hostile/cases (malformed XML,
 * bad SOAP, oversized, bogus /async-response) plus a trickling body; one responding gateway restarted
 * (SIGTERM, started again on its ports: the federation's SIGUSR2) every `--restart-every-s` (120; 10
 * in smoke).
 *
 * Checks (exit 1 when one fails): every legitimate request ends as Success, or — when it overlapped a
 * restart (until the circuit breaker's cool-down after it) — PartialSuccess / Failure whose every
 * error is XDSUnavailableCommunity; never a fault, a transport error or a hang; every hostile input
 * ends in the clear fault / RegistryError its case names; no gateway crashed (the federation would
 * exit); after the run, every Redis key of the run has a TTL within its family's bound, no
 * `pending:` or `replica:` key is left, and (full run) the short-lived families are gone once their
 * TTL passed; every audit record the gateways spooled arrived at the ARR. Goal (full run): each
 * gateway's RSS in the last minute within 10 % of its first minute.
 *
 * Figures: requests by transaction and outcome, p50 / p99 per transaction, RSS / heap / open fds of
 * every gateway every 10 s (from its /metrics), last minute ÷ first minute as the ratio.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import {
  Action,
  decodeAdhocQueryResponse,
  encodeFindDocumentsRequest,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  NS,
} from '@xcai/shared';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';
import { DEFAULT_CIRCUIT_OPTIONS } from '@xcai/shared/src/circuit/breaker';
import { startReplyReceiver } from '../support/async-peer';
import { arg, median } from '../support/bench';
import {
  asyncRetrieveCall,
  retrieveAnswer,
  retrieveCall,
  soapCall,
  type RetrieveAnswerForTest,
} from '../support/client';
import { startDemo } from '../support/demo';
import { studyImagingRequest } from '../support/federation';
import { deleteUnder, inspector, keysUnder, REDIS_URL, uniquePrefix } from '../support/redis';
import { rawPost } from '../support/sockets';
import {
  caseHeaders,
  check,
  expand,
  loadCorpus,
  post,
  type HostileCase,
  type Placeholders,
} from '../hostile/corpus';

const smoke = process.argv.includes('--smoke');
const durationMs = Number(arg('minutes', smoke ? '0.42' : '10')) * 60_000;
const restartEveryMs = Number(arg('restart-every-s', smoke ? '10' : '120')) * 1000;
const sampleEveryMs = smoke ? 2_000 : 10_000;
const WORKERS = Number(arg('workers', '4'));
/**
 * Requests per second, all lanes: one consumer is one peer to the initiating gateway, whose default
 * per-peer limit is 50/s (burst 100); above that it answers 429, as it should.
 */
const RATE = Number(arg('rate', '25'));
const ASYNC_SHARE = 0.3;
const HOSTILE_SHARE = 0.05;
/** A request not answered by then hangs (the IG's deadline is 30 s, async delivery retries 60 s). */
const HANG_MS = 90_000;
/** After a restart, calls may still find the circuit open for its cool-down, and then one timeout. */
const RESTART_GRACE_MS = DEFAULT_CIRCUIT_OPTIONS.coolDownMs + 12_000;
/** The window (ms) of the "first" and "last minute" of the memory figures. */
const EDGE_MS = Math.min(60_000, durationMs / 3);

type Tx = 'ITI-18' | 'ITI-43' | 'RAD-69 small' | 'RAD-69 large';
type Mode = 'sync' | 'async';
type Outcome =
  | 'Success'
  | 'PartialSuccess'
  | 'Failure'
  | 'fault'
  | 'error'
  | 'hang'
  | 'hostile-rejected'
  | 'hostile-accepted';

interface Item {
  tx: Tx;
  label: string;
  url: string;
  action: string;
  body: string;
}

interface Done {
  what: string;
  outcome: Outcome;
  ms: number;
  start: number;
  end: number;
  expected: boolean;
  note?: string;
}

const results: Done[] = [];
const problems: string[] = [];
const restarts: { start: number; end: number; line: string }[] = [];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

function overlapsRestart(start: number, end: number): boolean {
  return restarts.some((r) => start < (r.end || Date.now()) + RESTART_GRACE_MS && end > r.start);
}

/** Outcome of a legitimate request from its registry status and errors, and whether it is allowed. */
function judge(
  status: string,
  errors: { errorCode: string; codeContext?: string }[],
  start: number,
  end: number,
): { outcome: Outcome; expected: boolean; note?: string } {
  const outcome = status.replace(/.*:/, '') as Outcome;
  if (outcome === 'Success')
    return {
      outcome,
      expected: !errors.length,
      note: errors.length ? `Success with ${errors.length} error(s)` : undefined,
    };
  const others = errors.filter((e) => e.errorCode !== 'XDSUnavailableCommunity');
  const duringRestart = overlapsRestart(start, end);
  const expected = (outcome === 'PartialSuccess' || outcome === 'Failure') && !others.length && duringRestart;
  return {
    outcome: ['PartialSuccess', 'Failure'].includes(outcome) ? outcome : 'error',
    expected,
    note: expected
      ? undefined
      : `${status} ${duringRestart ? 'during' : 'outside'} a restart: ${errors.map((e) => `${e.errorCode} (${e.codeContext?.slice(0, 120)})`).join(', ')}`,
  };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'xcai-soak-'));
  const prefix = uniquePrefix('soak');
  const redis = inspector();
  const receiver = await startReplyReceiver();
  const demo = await startDemo(tmp, { REDIS_URL, XCAI_REDIS_PREFIX: prefix, DEMO_ASYNC: 'C' });
  const ep = demo.endpoints;
  console.log(
    `soak: ${(durationMs / 60_000).toFixed(1)} min, restart every ${restartEveryMs / 1000} s, ${WORKERS} workers; ` +
      `federation ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (A asks C asynchronously; Redis prefix ${prefix})`,
  );
  const tls = {
    ca: readFileSync(ep.tls.ca),
    cert: readFileSync(ep.tls.clientCertificate),
    key: readFileSync(ep.tls.clientKey),
  };
  const dispatcher = new Agent({ connect: tls, connections: WORKERS + 2 });
  const igUrl = new URL(ep.consumer.iti18);

  // The workload: every patient's ITI-18, every study's KOS (ITI-43), one instance and whole studies (RAD-69).
  const items: Item[] = [];
  for (const p of ep.patients.filter((x) => x.communities.length)) {
    const body = encodeFindDocumentsRequest(p.id);
    items.push({ tx: 'ITI-18', label: p.id, url: ep.consumer.iti18, action: Action.ITI18, body });
  }
  for (const c of ep.communities) {
    const m = JSON.parse(readFileSync(join(c.seedDir, 'manifest.json'), 'utf8')) as SeedManifest;
    for (const s of m.patients.flatMap((p) => p.studies)) {
      const kos = { homeCommunityId: m.homeCommunityId, repositoryUniqueId: m.repositoryUniqueId };
      items.push({
        tx: 'ITI-43',
        label: `${c.label} ${s.kos.documentUniqueId}`,
        url: ep.consumer.iti43,
        action: Action.ITI43,
        body: encodeRetrieveDocumentSetRequest([{ ...kos, documentUniqueId: s.kos.documentUniqueId }]),
      });
      const rad = (tx: Tx, limit?: number): Item => ({
        tx,
        label: `${c.label} ${s.studyInstanceUid}`,
        url: ep.consumer.rad69,
        action: Action.RAD69,
        body: encodeRetrieveImagingDocumentSetRequest(studyImagingRequest(m, s, { limit })),
      });
      items.push(rad('RAD-69 small', 1), rad('RAD-69 large'));
    }
  }

  /** One legitimate request, sync or async, judged. */
  const run = async (it: Item, mode: Mode): Promise<Done> => {
    const start = Date.now();
    const what = `${it.tx} ${mode}`;
    const signal = AbortSignal.timeout(HANG_MS);
    const finish = (r: { outcome: Outcome; expected: boolean; note?: string }): Done => {
      const end = Date.now();
      return { what, ...r, ms: end - start, start, end, note: r.note && `${what} ${it.label}: ${r.note}` };
    };
    try {
      let status: string;
      let errors: { errorCode: string; codeContext?: string }[];
      if (it.tx === 'ITI-18') {
        const a = await soapCall(it.url, it.action, it.body, {
          dispatcher,
          signal,
          replyTo: mode === 'async' ? `${receiver.url}/reply` : undefined,
        });
        let env = a.envelope;
        if (mode === 'async') {
          if (a.status !== 202)
            return finish({ outcome: 'fault', expected: false, note: `HTTP ${a.status}` });
          env = (await within(receiver.next(a.messageId), signal)).envelope;
        }
        if (env.payload.is(NS.soap, 'Fault'))
          return finish({ outcome: 'fault', expected: false, note: 'fault' });
        ({ status, errors } = decodeAdhocQueryResponse(env.doc, env.payload));
      } else {
        let a: RetrieveAnswerForTest;
        if (mode === 'async') {
          const r = await asyncRetrieveCall(it.url, it.action, it.body, `${receiver.url}/reply`, {
            dispatcher,
            signal,
          });
          if (r.status !== 202)
            return finish({ outcome: 'fault', expected: false, note: `HTTP ${r.status}` });
          const m = await within(receiver.next(r.messageId), signal);
          a = retrieveAnswer(m.xml, m.parts, {
            status: 200,
            contentType: m.contentType,
            messageId: r.messageId,
          });
        } else {
          a = await retrieveCall(it.url, it.action, it.body, { dispatcher, signal });
        }
        if (a.truncated)
          return finish({ outcome: 'error', expected: false, note: `cut short: ${a.truncated}` });
        if (a.envelope.payload.is(NS.soap, 'Fault'))
          return finish({ outcome: 'fault', expected: false, note: `HTTP ${a.status} fault` });
        status = a.registryStatus;
        errors = a.errors;
      }
      return finish(judge(status, errors, start, Date.now()));
    } catch (e) {
      const hang = signal.aborted;
      return finish({ outcome: hang ? 'hang' : 'error', expected: false, note: (e as Error).message });
    }
  };

  // Warm-up, in the consumer's order (the responding gateways release a study to RAD-75 once its KOS
  // went out): what does not succeed here (e.g. a patient who opted out) is left out of the mix.
  const usable: Item[] = [];
  for (const tx of ['ITI-18', 'ITI-43', 'RAD-69 small', 'RAD-69 large'] as Tx[]) {
    for (const it of items.filter((x) => x.tx === tx)) {
      const r = await run(it, 'sync');
      if (r.outcome === 'Success') usable.push(it);
    }
  }
  const byTx = (tx: Tx) => usable.filter((x) => x.tx === tx);
  console.log(
    `workload: ${(['ITI-18', 'ITI-43', 'RAD-69 small', 'RAD-69 large'] as Tx[]).map((tx) => `${byTx(tx).length} ${tx}`).join(', ')} ` +
      `(of ${items.length}; the others do not succeed even at rest, e.g. consent)`,
  );
  const MIX: [Tx, number][] = [
    ['ITI-18', 0.35],
    ['ITI-43', 0.25],
    ['RAD-69 small', 0.25],
    ['RAD-69 large', 0.15],
  ];
  const pick = (): Item => {
    let x = Math.random();
    for (const [tx, w] of MIX) {
      if ((x -= w) < 0 || tx === 'RAD-69 large') {
        const pool = byTx(tx);
        return pool[Math.floor(Math.random() * pool.length)];
      }
    }
    throw new Error('unreachable');
  };

  const soakStart = Date.now();
  const soakEnd = soakStart + durationMs;
  let legit = 0;
  let hostile = 0;

  const samples = startSampler(ep.management ?? {});
  const workers = Array.from({ length: WORKERS }, async () => {
    while (Date.now() < soakEnd && demo.exited() === undefined) {
      await pace();
      legit++;
      const r = await run(pick(), Math.random() < ASYNC_SHARE ? 'async' : 'sync');
      results.push(r);
      if (!r.expected) problems.push(r.note ?? `${r.what}: ${r.outcome}`);
    }
  });
  const corpus = loadCorpus().filter((c) => c.targets.includes('ig') && c.direction === 'request');
  const trickling: Promise<void>[] = [];
  const hostileLane = (async () => {
    let n = 0;
    while (Date.now() < soakEnd && demo.exited() === undefined) {
      if (hostile >= (legit * HOSTILE_SHARE) / (1 - HOSTILE_SHARE)) {
        await sleep(50);
        continue;
      }
      await pace();
      hostile++;
      // Every 10th a trickling body, which takes the idle timeout (10 s): not waited for here.
      const slow = n++ % 10 === 9 && soakEnd - Date.now() > 12_000;
      const done = slow ? trickle() : runHostile(corpus[Math.floor(Math.random() * corpus.length)]);
      const record = (r: Done) => {
        results.push(r);
        if (!r.expected) problems.push(r.note ?? `${r.what}: ${r.outcome}`);
      };
      if (slow) trickling.push(done.then(record));
      else record(await done);
    }
  })();
  const restartLane = (async () => {
    for (let at = soakStart + restartEveryMs; at < soakEnd - 2_000; at += restartEveryMs) {
      await sleep(at - Date.now());
      if (demo.exited() !== undefined) return;
      const seen = demo.output().split('\nrestarted ').length;
      const r = { start: Date.now(), end: 0, line: '' };
      restarts.push(r);
      demo.signal('SIGUSR2');
      while (demo.output().split('\nrestarted ').length === seen && Date.now() - r.start < 40_000)
        await sleep(50);
      r.end = Date.now();
      r.line = /\nrestarted ([^\n]+)\n?$/.exec(demo.output())?.[1] ?? '(did not come back within 40 s)';
      if (!r.line.includes(' ms')) problems.push(`restart: ${r.line}`);
    }
  })();

  async function runHostile(c: HostileCase): Promise<Done> {
    const start = Date.now();
    const path = {
      query: '/iti18',
      retrieve: '/iti43',
      imaging: '/rad69',
      'async-response': '/async-response',
    }[c.endpoint];
    const action = {
      query: Action.ITI18,
      retrieve: Action.ITI43,
      imaging: Action.RAD69,
      'async-response': Action.ITI38Response,
    }[c.endpoint];
    const a = ep.communities[0];
    const p: Placeholders = {
      action,
      to: `${igUrl.origin}${path}`,
      home: a.homeCommunityId,
      repo: a.repositoryUniqueId,
      idsRepo: a.idsRepositoryUniqueId,
      patient: (ep.patients[0]?.id ?? '').replace(/&/g, '&amp;'),
      relatesTo: '',
      doc: '1.3.6.1.4.1.21367.13.70.299.3.1',
    };
    const headers = caseHeaders(c, p);
    const what = `hostile ${c.name}`;
    try {
      check(c, await post(p.to, headers, expand(c.body, p, c.crlf), dispatcher));
      return {
        what: 'hostile',
        outcome: 'hostile-rejected',
        ms: Date.now() - start,
        start,
        end: Date.now(),
        expected: true,
      };
    } catch (e) {
      const note = `${what}: ${(e as Error).message.slice(0, 200)}`;
      return {
        what: 'hostile',
        outcome: 'hostile-accepted',
        ms: Date.now() - start,
        start,
        end: Date.now(),
        expected: false,
        note,
      };
    }
  }

  /** Headers, the start of an envelope a byte every 100 ms, then silence: cut off by bodyIdleTimeoutMs (10 s). */
  async function trickle(): Promise<Done> {
    const start = Date.now();
    const head = Buffer.from(
      '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">',
    );
    const r = await rawPost(
      igUrl.hostname,
      Number(igUrl.port),
      '/iti18',
      { 'content-type': 'application/soap+xml; charset=UTF-8', 'content-length': '100000' },
      head.subarray(0, 20).reduce<Buffer[]>((out, b) => (out.push(Buffer.from([b])), out), []),
      { delayMs: 100, maxMs: 20_000, tls },
    );
    const expected = r.status === 408 && r.endedAfterMs < 16_000;
    return {
      what: 'hostile',
      outcome: expected ? 'hostile-rejected' : 'hostile-accepted',
      ms: r.endedAfterMs,
      start,
      end: Date.now(),
      expected,
      note: expected ? undefined : `trickling body: HTTP ${r.status} after ${r.endedAfterMs} ms`,
    };
  }

  await Promise.all([...workers, hostileLane, restartLane]);
  await Promise.all(trickling);
  const soakMs = Date.now() - soakStart;
  samples.stop();
  await sleep(1_000);
  const crashed = demo.exited() !== undefined;
  if (crashed)
    problems.push(`the federation exited (${demo.exited()}): a service died\n${demo.output().slice(-2000)}`);

  // Figures.
  const rows = [...new Set(results.map((r) => r.what))].sort();
  const outcomes: Outcome[] = [
    'Success',
    'PartialSuccess',
    'Failure',
    'fault',
    'error',
    'hang',
    'hostile-rejected',
    'hostile-accepted',
  ];
  console.log(
    `\n${results.length} requests in ${(soakMs / 1000).toFixed(0)} s (${hostile} hostile = ${((100 * hostile) / Math.max(1, results.length)).toFixed(1)} %); restarts:`,
  );
  for (const [i, r] of restarts.entries()) {
    // Degraded: from the restart to the last legitimate request not answered Success before the next one.
    const next = restarts[i + 1]?.start ?? Infinity;
    const bad = results.filter(
      (x) => x.what !== 'hostile' && x.outcome !== 'Success' && x.end > r.start && x.start < next,
    );
    const degraded = bad.length ? (Math.max(...bad.map((x) => x.end)) - r.start) / 1000 : 0;
    console.log(
      `  at ${((r.start - soakStart) / 1000).toFixed(0)} s: ${r.line}; ${bad.length} requests not Success, the last ${degraded.toFixed(1)} s after the SIGTERM`,
    );
  }
  console.log(
    `\n${'transaction'.padEnd(22)}${outcomes.map((o) => o.padStart(17)).join('')}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'p99 last/first min'.padStart(20)}`,
  );
  for (const w of rows) {
    const rs = results.filter((r) => r.what === w);
    const ms = rs.map((r) => r.ms);
    const edge = (first: boolean) =>
      rs
        .filter((r) => (first ? r.start < soakStart + EDGE_MS : r.start >= soakStart + soakMs - EDGE_MS))
        .map((r) => r.ms);
    console.log(
      `${w.padEnd(22)}${outcomes.map((o) => String(rs.filter((r) => r.outcome === o).length).padStart(17)).join('')}` +
        `${median(ms).toFixed(0).padStart(9)}${pct(ms, 99).toFixed(0).padStart(9)}${(pct(edge(false), 99) / pct(edge(true), 99)).toFixed(2).padStart(20)}`,
    );
  }
  const memory = samples.report(soakStart, soakEnd);

  // Stop (gracefully: the gateways deliver their last audit records, then the ARR stops).
  const code = await demo.stop();
  if (!crashed && code !== 0) problems.push(`the federation stopped with exit code ${code}`);
  await receiver.close();
  await dispatcher.close();

  // Audit: every record a gateway spooled arrived at the repository.
  const spooledRecords = loadAuditRecords(Object.values(ep.auditSpools ?? {}));
  const spooled = new Set(spooledRecords.map((r) => r.id));
  const stored = new Set(loadAuditRecords([ep.auditDir ?? '']).map((r) => r.id));
  const missing = [...spooled].filter((id) => !stored.has(id)).length;
  const extra = [...stored].filter((id) => !spooled.has(id)).length;
  console.log(
    `\naudit: ${spooled.size} records spooled (sent) by the gateways, ${stored.size} received at the ARR; missing ${missing}, unknown ${extra}`,
  );
  for (const [name, dir] of Object.entries(ep.auditSpools ?? {})) {
    const mine = spooledRecords.filter((r) => r.origin.startsWith(dir));
    const lost = mine.filter((r) => !stored.has(r.id)).length;
    if (lost) console.log(`  ${name}: ${lost} of ${mine.length} not received`);
  }
  if (missing || extra)
    problems.push(`audit: ${missing} record(s) sent but not received, ${extra} received but never spooled`);

  // Redis: what the run left, and whether it goes away by itself.
  problems.push(...(await redisLeftovers(redis, prefix)));
  await deleteUnder(redis, prefix);
  redis.disconnect();
  if (problems.length) console.log(`\nkept for a look: ${tmp} (logs in run/logs)`);
  else rmSync(tmp, { recursive: true, force: true });

  if (!smoke)
    for (const m of memory)
      if (m.rssRatio > 1.1)
        problems.push(`goal: ${m.name} RSS last/first minute ${m.rssRatio.toFixed(2)} > 1.10`);
  if (problems.length) {
    console.log(`\nFAILED (${problems.length}):\n  ${[...new Set(problems)].slice(0, 30).join('\n  ')}`);
    process.exit(1);
  }
  console.log('\nall checks passed');
  process.exit(0);
}

/** Families of Redis keys (shared/src/async/README.md) and the longest TTL each may have. */
const TTL_BOUND: Record<string, number> = {
  pending: 5 * 60_000,
  claim: 5 * 60_000,
  served: 5 * 60_000,
  replica: 30_000,
  integrity: 24 * 3600_000,
  released: 24 * 3600_000,
  xcpd: 3600_000,
};
const SHORT_LIVED = ['pending', 'claim', 'served', 'replica'];

async function redisLeftovers(redis: ReturnType<typeof inspector>, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const scan = async () => {
    const keys = await keysUnder(redis, prefix);
    const fam = new Map<string, { n: number; maxTtl: number; noTtl: number; beyond: number }>();
    for (const [k, ttl] of keys) {
      const f = k.slice(prefix.length).split(':')[0];
      const e = fam.get(f) ?? { n: 0, maxTtl: 0, noTtl: 0, beyond: 0 };
      e.n++;
      e.maxTtl = Math.max(e.maxTtl, ttl);
      if (ttl === -2) continue; // expired between SCAN and PTTL
      if (ttl < 0) e.noTtl++;
      else if (!(f in TTL_BOUND) || ttl > TTL_BOUND[f]) e.beyond++;
      fam.set(f, e);
    }
    return fam;
  };
  const fam = await scan();
  console.log(
    `redis after the run (prefix ${prefix}): ${[...fam].map(([f, e]) => `${f}: ${e.n} (max TTL ${(e.maxTtl / 1000).toFixed(0)} s)`).join(', ') || 'no keys'}`,
  );
  for (const [f, e] of fam) {
    if (e.noTtl) out.push(`redis: ${e.noTtl} ${f}: key(s) without a TTL`);
    if (e.beyond) out.push(`redis: ${e.beyond} ${f}: key(s) with a TTL beyond the family's bound`);
  }
  for (const f of ['pending', 'replica'])
    if (fam.get(f)?.n) out.push(`redis: ${fam.get(f)?.n} ${f}: key(s) left after every request ended`);
  if (!smoke) {
    const wait = Math.max(0, ...SHORT_LIVED.map((f) => fam.get(f)?.maxTtl ?? 0));
    await sleep(wait + 1_000);
    const after = await scan();
    const left = SHORT_LIVED.map((f) => [f, after.get(f)?.n ?? 0] as const).filter(([, n]) => n);
    console.log(
      `redis ${(wait / 1000).toFixed(0)} s later (their TTLs passed): ${left.length ? left.map(([f, n]) => `${f}: ${n}`).join(', ') : 'no pending/claim/served/replica key left'}`,
    );
    for (const [f, n] of left) out.push(`redis: ${n} ${f}: key(s) still there after their TTL`);
  }
  return out;
}

interface MemoryRow {
  name: string;
  rssRatio: number;
}

/** Samples each gateway's /metrics (RSS, V8 heap used, open fds) every `sampleEveryMs`. */
function startSampler(management: Record<string, string>) {
  const samples = new Map<string, { t: number; rss: number; heap: number; fds: number; spool: number }[]>();
  const once = async () => {
    await Promise.all(
      Object.entries(management).map(async ([name, url]) => {
        try {
          const res = await request(`${url}/metrics`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
          const text = await res.body.text();
          const g = (m: string) =>
            Number(new RegExp(`^${m}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
          const list = samples.get(name) ?? [];
          list.push({
            t: Date.now(),
            rss: g('process_resident_memory_bytes'),
            heap: g('nodejs_heap_size_used_bytes'),
            fds: g('process_open_fds'),
            spool: g('xcai_audit_spool_depth'),
          });
          samples.set(name, list);
        } catch {
          /* restarting */
        }
      }),
    );
  };
  void once();
  const timer = setInterval(() => void once(), sampleEveryMs);
  const MiB = 2 ** 20;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    stop: () => clearInterval(timer),
    report(from: number, to: number): MemoryRow[] {
      const rows: MemoryRow[] = [];
      console.log(
        `\nmemory (every ${sampleEveryMs / 1000} s from /metrics; first vs last ${(EDGE_MS / 1000).toFixed(0)} s, mean of the samples):`,
      );
      for (const [name, list] of [...samples].sort()) {
        const first = list.filter((s) => s.t < from + EDGE_MS);
        const last = list.filter((s) => s.t >= to - EDGE_MS);
        if (!first.length || !last.length) continue;
        const f = { rss: mean(first.map((s) => s.rss)), heap: mean(first.map((s) => s.heap)) };
        const l = { rss: mean(last.map((s) => s.rss)), heap: mean(last.map((s) => s.heap)) };
        const rssRatio = l.rss / f.rss;
        rows.push({ name, rssRatio });
        console.log(
          `  ${name.padEnd(22)} RSS ${(f.rss / MiB).toFixed(0)} → ${(l.rss / MiB).toFixed(0)} MiB (×${rssRatio.toFixed(2)}), ` +
            `heap ${(f.heap / MiB).toFixed(0)} → ${(l.heap / MiB).toFixed(0)} MiB (×${(l.heap / f.heap).toFixed(2)}), ` +
            `open fds ${list[0].fds} → ${list[list.length - 1].fds}, audit spool depth ${list[0].spool} → ${list[list.length - 1].spool}, peak RSS ${(Math.max(...list.map((s) => s.rss)) / MiB).toFixed(0)} MiB, ${list.length} samples`,
        );
        console.log(`  ${''.padEnd(22)} RSS MiB: ${list.map((s) => (s.rss / MiB).toFixed(0)).join(' ')}`);
      }
      return rows;
    },
  };
}

let nextSlot = 0;
/** Waits for the next slot of the run's request rate (RATE per second, shared by every lane). */
async function pace(): Promise<void> {
  const now = Date.now();
  nextSlot = Math.max(nextSlot, now) + 1000 / RATE;
  await sleep(nextSlot - 1000 / RATE - now);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

function within<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('no async response in time'));
    signal.addEventListener('abort', () => reject(new Error('no async response in time')), { once: true });
    p.then(resolve, reject);
  });
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
