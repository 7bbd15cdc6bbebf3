// Async exchange under load, against the Redis at REDIS_URL (default redis://127.0.0.1:6379):
//   node test/bench/run.js async-pending [--n 10000] [--m 300] [--smoke]
// Needs shared/dist (`npx tsc -b tsconfig.build.json`): '@xcai/shared' resolves to it.
//
// 1. N consumer ITI-18 requests served async by an initiating gateway, each fanned out as ITI-38 used
//    async to a peer that answers 202 and holds every response: with all N outstanding, Redis memory
//    per outstanding request is measured (goal ≤ 2 KiB); then the peer releases the responses and the
//    completions delivered to the consumers' ReplyTo are counted (goal 100 %).
// 2. The same fan-out (two responding gateways) sync and async: p50 of M sequential ITI-18 each, and
//    the ratio. Machines are noisy: figures are indicative.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import {
  Action,
  decodeAdhocQueryResponse,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  newMessageId,
  readDirectory,
  silentLogger,
  type ServiceSettings,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { startInitiatingGateway } from '../../services/initiating-gateway/src/index';
import { startRespondingGateway } from '../../services/responding-gateway/src/index';
import { peerObject, startAsyncPeer, startReplyReceiver } from '../support/async-peer';
import { BENCH_LIMITS } from '../support/federation';
import { deleteUnder, inspector, keysUnder, REDIS_URL, uniquePrefix } from '../support/redis';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const smoke = process.argv.includes('--smoke');
/** One benchmark client is one peer, with up to 10 000 requests outstanding at a time. */
const LIMITS = { ...BENCH_LIMITS, maxConcurrentRequests: 20_000 };
const N = Number(arg('n', smoke ? '300' : '10000'));
const M = Number(arg('m', smoke ? '30' : '300'));
const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.501';
const HOME_X = 'urn:oid:1.3.6.1.4.1.21367.13.70.502';
const HOME_Y = 'urn:oid:1.3.6.1.4.1.21367.13.70.503';
const prefix = uniquePrefix('bench');
const client = new Agent({ connections: 256 });

const settings = (): ServiceSettings => ({
  directoryFile: '(inline)',
  host: '127.0.0.1',
  port: 0,
  mgmtPort: -1,
  audit: { transport: 'none' },
  maxRequestBytes: 4 * 1024 * 1024,
  redis: REDIS_URL,
  redisKeyPrefix: prefix,
});

const QUERY = encodeFindDocumentsRequest('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO');

async function post(
  url: string,
  replyTo?: string,
): Promise<{ status: number; body: string; messageId: string }> {
  const messageId = newMessageId();
  const res = await request(url, {
    method: 'POST',
    dispatcher: client,
    headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
    body: encodeEnvelope({ action: Action.ITI18, messageId, to: url, replyTo, body: QUERY, request: true }),
  });
  return { status: res.statusCode, body: await res.body.text(), messageId };
}

async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

function usedMemory(info: string): number {
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

const kib = (b: number) => `${(b / 1024).toFixed(2)} KiB`;

async function outstanding(): Promise<void> {
  const redis = inspector();
  const peer = await startAsyncPeer(HOME_X, 'hold');
  const receiver = await startReplyReceiver();
  const ig = await startInitiatingGateway({
    settings: settings(),
    log: silentLogger,
    directory: readDirectory({
      homeCommunityId: HOME_A,
      deadlineMs: 600_000,
      inboundLimits: LIMITS,
      communities: [
        {
          homeCommunityId: HOME_X,
          async: true,
          endpoints: { iti38: { url: peer.url, timeoutMs: 600_000, maxConcurrent: 256 } },
        },
      ],
      consumers: [{ name: 'bench', replyTo: ['http://127.0.0.1:*'] }],
    }),
  });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const base = usedMemory(await redis.info('memory'));
    const t0 = Date.now();
    const ids: string[] = [];
    await pool(
      Array.from({ length: N }, (_, i) => i),
      128,
      async () => {
        const r = await post(`${ig.url}/iti18`, `${receiver.url}/reply`);
        if (r.status !== 202) throw new Error(`expected 202, got ${r.status}: ${r.body.slice(0, 200)}`);
        ids.push(r.messageId);
      },
    );
    await peer.waitHeld(N);
    const tHeld = Date.now() - t0;
    const during = usedMemory(await redis.info('memory'));
    const keys = await keysUnder(redis, prefix);
    const fam = (f: string) => [...keys.keys()].filter((k) => k.includes(`:${f}:`));
    const sample = async (ks: string[]) => {
      const s = ks.slice(0, 200);
      let total = 0;
      for (const k of s) total += Number(await redis.memory('USAGE', k));
      return s.length ? total / s.length : 0;
    };
    const pendingKeys = fam('pending');
    const servedKeys = fam('served');
    const pendingUsage = await sample(pendingKeys);
    const servedUsage = await sample(servedKeys);
    const perRequest = (during - base) / N;

    const t1 = Date.now();
    await pool(peer.held, 64, (h) => h.deliver());
    const completed = await waitCount(receiver, N, 120_000);
    const tDone = Date.now() - t1;
    const statuses = { ok: 0, other: 0 };
    for (const id of ids) {
      const m = await Promise.race([
        receiver.next(id),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 10)),
      ]);
      const st = m && decodeAdhocQueryResponse(m.envelope.doc, m.envelope.payload).status;
      if (st === 'Success') statuses.ok++;
      else statuses.other++;
    }
    const after = await keysUnder(redis, prefix);
    const left = [...after.keys()].filter((k) => k.includes(':pending:')).length;

    console.log(`\n== ${N} outstanding async requests (ITI-18 served async → ITI-38 used async) ==`);
    console.log(
      `  all ${N} outstanding after ${tHeld} ms; Redis keys: pending ${pendingKeys.length}, served ${servedKeys.length}, total ${keys.size}`,
    );
    console.log(
      `  Redis used_memory: +${kib(during - base)} → ${kib(perRequest)} per outstanding request (goal ≤ 2 KiB: ${perRequest <= 2048 ? 'met' : 'NOT met'}, ratio ${(perRequest / 2048).toFixed(2)})`,
    );
    console.log(
      `  MEMORY USAGE per key: pending ${pendingUsage.toFixed(0)} B, served ${servedUsage.toFixed(0)} B`,
    );
    console.log(
      `  completions: ${completed}/${N} delivered in ${tDone} ms, ${statuses.ok} Success (${((100 * statuses.ok) / N).toFixed(2)} %, goal 100 %)`,
    );
    console.log(`  pending keys left after completion: ${left}`);
  } finally {
    await ig.close();
    await peer.close();
    await receiver.close();
    await deleteUnder(redis, prefix);
    redis.disconnect();
  }
}

async function waitCount(r: { count(): number }, n: number, ms: number): Promise<number> {
  const until = Date.now() + ms;
  while (r.count() < n && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
  return r.count();
}

/** A registry answering every ITI-18 with the same five objects. */
async function fakeRegistry(home: string): Promise<{ url: string; server: Server }> {
  const objects = Array.from({ length: 5 }, () => peerObject(home));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = /<wsa:MessageID>([^<]+)</.exec(Buffer.concat(chunks).toString())?.[1];
      res.writeHead(200, { 'content-type': 'application/soap+xml; charset=UTF-8' });
      res.end(
        encodeEnvelope({
          action: Action.ITI18Response,
          relatesTo: id,
          body: encodeAdhocQueryResponse('Success', [], objects),
          request: false,
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/registry`, server };
}

async function latency(): Promise<void> {
  const regs = await Promise.all([fakeRegistry(HOME_X), fakeRegistry(HOME_Y)]);
  const rgs = await Promise.all(
    [HOME_X, HOME_Y].map((home, i) =>
      startRespondingGateway({
        settings: settings(),
        log: silentLogger,
        directory: readDirectory({
          homeCommunityId: home,
          local: { registry: { url: regs[i].url } },
          communities: [{ homeCommunityId: HOME_A, replyTo: ['http://127.0.0.1:*/async-response'] }],
          inboundLimits: LIMITS,
        }),
      }),
    ),
  );
  const ig = (async: boolean) =>
    startInitiatingGateway({
      settings: settings(),
      log: silentLogger,
      directory: readDirectory({
        homeCommunityId: HOME_A,
        inboundLimits: LIMITS,
        communities: [HOME_X, HOME_Y].map((home, i) => ({
          homeCommunityId: home,
          async,
          endpoints: { iti38: `${rgs[i].url}/iti38` },
        })),
      }),
    });
  const [igSync, igAsync] = await Promise.all([ig(false), ig(true)]);
  try {
    const times = { sync: [] as number[], async: [] as number[] };
    const one = async (g: typeof igSync, into: number[]) => {
      const t = process.hrtime.bigint();
      const r = await post(`${g.url}/iti18`);
      into.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (r.status !== 200 || !r.body.includes('ResponseStatusType:Success'))
        throw new Error(`unexpected answer ${r.status}`);
    };
    for (let i = 0; i < 10; i++) {
      await one(igSync, []);
      await one(igAsync, []);
    }
    for (let i = 0; i < M; i++) {
      await one(igSync, times.sync);
      await one(igAsync, times.async);
    }
    const p = (xs: number[], q: number) =>
      [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
    const s50 = p(times.sync, 0.5);
    const a50 = p(times.async, 0.5);
    console.log(`\n== Same fan-out (2 responding gateways), ${M} sequential ITI-18 each ==`);
    console.log(`  sync : p50 ${s50.toFixed(2)} ms, p90 ${p(times.sync, 0.9).toFixed(2)} ms`);
    console.log(`  async: p50 ${a50.toFixed(2)} ms, p90 ${p(times.async, 0.9).toFixed(2)} ms`);
    console.log(
      `  extra p50 of async: +${(a50 - s50).toFixed(2)} ms (ratio async/sync ${(a50 / s50).toFixed(2)})`,
    );
  } finally {
    await igSync.close();
    await igAsync.close();
    for (const r of rgs) await r.close();
    for (const r of regs) await new Promise<void>((res) => r.server.close(() => res()));
  }
}

async function main(): Promise<void> {
  console.log(
    `async-pending bench: N=${N}, M=${M}${smoke ? ' (smoke)' : ''}, Redis ${REDIS_URL}, prefix ${prefix}`,
  );
  await outstanding();
  await latency();
  await client.close();
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e);
    process.exit(1);
  },
);
