/**
 * Redis Sentinel failover under load, with real processes: a primary, a replica and three
 * sentinels (Debian's redis-server / redis-sentinel), two initiating-gateway replicas configured
 * with REDIS_SENTINELS, and a responding gateway answering ITI-38 asynchronously in front of a
 * reference community that takes 2 s per query. Each replica announces the OTHER one's address
 * as its public URL, so every async answer lands on the replica that does not hold the request and
 * needs Redis (pending record, owner's address) to be handed over. 500 asynchronous ITI-18 are
 * accepted, then the primary is SIGKILLed while their sub-requests are outstanding; the sentinels
 * promote the replica and every ITI-18 response reaches the consumer exactly once.
 * Needs `npm run build` (the gateways run from dist/).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Action,
  decodeAdhocQueryResponse,
  encodeFindDocumentsRequest,
  newMessageId,
  type RunningGateway,
} from '@xcai/shared';
import { soapCall } from '../support/client';
import {
  BENCH_LIMITS,
  demoSeeds,
  directory,
  spawnCommunity,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { startReplyReceiver, type ReplyReceiver } from '../support/async-peer';
import { freePort, uniquePrefix } from '../support/redis';
import { startSentinelGroup, type SentinelGroup } from '../support/redis-ha';
import { mapBounded } from '@xcai/shared/src/util/bounded';
import { spawnIgReplica, type IgReplica } from '../support/ig-replica';
import { readManifest } from '../../services/reference-community/src/server';

const N = 500;
// Everything here comes from 127.0.0.1: lift the per-address connection bounds too.
const LIMITS = {
  ...BENCH_LIMITS,
  maxHalfOpenPerAddress: 10_000,
  maxHalfOpen: 10_000,
  maxIdlePerAddress: 10_000,
  maxIdle: 10_000,
};
const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const prefix = uniquePrefix('sentinel');
const stop: (() => Promise<void>)[] = [];
let work: string;
let group: SentinelGroup;
let refB: CommunityProcess;
let rgB: RunningGateway;
let receiver: ReplyReceiver;
let homeA: string, homeB: string;
let ig: IgReplica[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'xcai-sentinel-e2e-'));
  group = await startSentinelGroup();
  stop.push(group.stop);
  const seeds = await demoSeeds();
  homeA = readManifest(seeds.A).homeCommunityId;
  refB = await spawnCommunity([seeds.B], { delayMs: 2_000 });
  stop.push(refB.stop);
  homeB = refB.homeCommunityId;
  rgB = await startRG(
    directory({
      homeCommunityId: homeB,
      name: 'RG B',
      deadlineMs: 40_000,
      inboundLimits: LIMITS,
      local: { registry: { url: refB.registry, maxConcurrent: 256, timeoutMs: 30_000 } },
      communities: [{ homeCommunityId: homeA, name: 'A', replyTo: ['http://127.0.0.1:*/async-response'] }],
    }),
    { async: { deliveryWindowMs: 60_000 } },
  );
  stop.push(rgB.close);
  receiver = await startReplyReceiver();
  stop.push(receiver.close);
  const ports = [await freePort(), await freePort()];
  const dirFor = (name: string) => ({
    homeCommunityId: homeA,
    name: `A (${name})`,
    deadlineMs: 60_000,
    inboundLimits: LIMITS,
    communities: [
      {
        homeCommunityId: homeB,
        name: 'B',
        async: true,
        endpoints: { iti38: { url: `${rgB.url}/iti38`, timeoutMs: 55_000, maxConcurrent: 1_000 } },
      },
    ],
    consumers: [{ name: 'PACS', replyTo: ['http://127.0.0.1:*'] }],
  });
  ig = await Promise.all(
    [0, 1].map((i) =>
      spawnIgReplica({
        dir: work,
        name: `ig${i + 1}`,
        directory: dirFor(`ig${i + 1}`),
        keep: /handed over|handing over|deferred|restored|primary switched|redis connected|ignored|no longer waiting/,
        env: {
          XCAI_PORT: String(ports[i]),
          XCAI_PUBLIC_URL: `http://127.0.0.1:${ports[1 - i]}`,
          XCAI_HANDOVER_SECRET: 'sentinel-test-secret-0123456789abcdef',
          REDIS_SENTINELS: group.sentinelList,
          REDIS_SENTINEL_NAME: group.name,
          XCAI_REDIS_PREFIX: prefix,
          XCAI_AUDIT_TRANSPORT: 'none',
          XCAI_AUDIT_SPOOL_DIR: join(work, `audit-${i + 1}`),
        },
      }),
    ),
  );
  for (const g of ig) stop.push(g.stop);
}, 90_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s().catch(() => undefined);
  if (work) rmSync(work, { recursive: true, force: true });
});

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

it('every one of 500 outstanding async requests completes exactly once across a Sentinel failover', async () => {
  const replyTo = `${receiver.url}/reply`;
  const sent = await mapBounded(
    Array.from({ length: N }, (_, i) => i),
    50,
    async (i) => {
      // A client that lost its connection sends the same MessageID again (acknowledged, not run twice).
      const messageId = newMessageId();
      const call = () =>
        soapCall(`${ig[i % 2].url}/iti18`, Action.ITI18, encodeFindDocumentsRequest(PATIENT_1), {
          replyTo,
          messageId,
        });
      const a = await call().catch(call);
      expect(a.status).toBe(202);
      return a.messageId;
    },
  );
  // The sub-requests are waiting on the 2 s reference community: crash the primary now.
  const oldPrimary = group.primary.port;
  await group.primary.kill();
  expect(
    await until(async () => (await group.currentPrimary().catch(() => 0)) === group.replica.port, 20_000),
  ).toBe(true);
  expect(oldPrimary).not.toBe(group.replica.port);

  const all = await until(() => receiver.count() >= N, 70_000);
  // (Bounds, not timings: the answers also queue behind the 4-per-address limit on unauthenticated
  // answers of /async-response, and everything here comes from 127.0.0.1.)
  // Give a duplicate the time to show up.
  await new Promise((r) => setTimeout(r, 1_500));
  expect([all, receiver.count()]).toEqual([true, N]);
  const outcomes = new Map<string, number>();
  for (const id of sent) {
    const m = await receiver.next(id);
    expect(m.envelope.wsa.action).toBe(Action.ITI18Response);
    const res = decodeAdhocQueryResponse(m.envelope.doc, m.envelope.payload);
    const outcome =
      res.status === 'Success' && res.objects.length > 0 && res.objects.every((o) => o.attr('home') === homeB)
        ? 'success'
        : res.errors.map((e) => `${e.errorCode}@${e.location === homeB ? 'B' : e.location}`).join(',');
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  const logSummary = (g: IgReplica) => {
    const m: Record<string, number> = {};
    for (const l of g.logs)
      m[`${String(l.msg)} ${String(l.reason ?? '')}`] =
        (m[`${String(l.msg)} ${String(l.reason ?? '')}`] ?? 0) + 1;
    return m;
  };
  // Answers that met the failover were deferred (503) and redelivered, not lost: all succeed.
  const ok = outcomes.get('success') === N;
  expect({ outcomes: Object.fromEntries(outcomes), logs: ok ? 'ok' : ig.map(logSummary) }).toEqual({
    outcomes: { success: N },
    logs: 'ok',
  });
  const handedOver = ig.reduce(
    (n, g) => n + g.logs.filter((l) => l.msg === 'async response handed over to the waiting replica').length,
    0,
  );
  expect(handedOver).toBe(N);
  expect(ig.every((g) => g.logs.filter((l) => l.msg === 'redis connected').length >= 2)).toBe(true);
}, 120_000);
