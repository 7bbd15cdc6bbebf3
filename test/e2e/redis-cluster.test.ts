/**
 * Redis Cluster with real processes: three masters (redis-server --cluster-enabled yes, slots
 * assigned by `redis-cli --cluster create`). The initiating gateway runs the asynchronous ITI-38
 * exchange through the cluster (REDIS_CLUSTER_NODES); its keys spread over slots and nodes while
 * the keys of one request share a slot, and the stores that read or write several keys at once
 * (integrity MGET / pipeline, XCPD correlations MGET / MULTI, released studies pipeline) work —
 * without the hash tags the cluster refuses them (CROSSSLOT).
 */
import { Cluster } from 'ioredis';
import {
  Action,
  asyncKeys,
  closeRedis,
  connectRedis,
  correlationKeys,
  decodeAdhocQueryResponse,
  encodeFindDocumentsRequest,
  redisSettingsFromEnv,
  RedisCorrelationCache,
  RedisIntegrityStore,
  scanTargets,
  silentLogger,
  whenReady,
  type RunningGateway,
} from '@xcai/shared';
import { RedisReleasedStudies } from '@xcai/shared/src/disclosure/released';
import { soapCall } from '../support/client';
import {
  demoSeeds,
  directory,
  spawnCommunity,
  startIG,
  startRG,
  testSettings,
  type CommunityProcess,
} from '../support/federation';
import { startReplyReceiver, type ReplyReceiver } from '../support/async-peer';
import { uniquePrefix } from '../support/redis';
import { startCluster, type RedisCluster } from '../support/redis-ha';
import { readManifest } from '../../services/reference-community/src/server';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const prefix = uniquePrefix('cluster');
const stop: (() => Promise<void>)[] = [];
let cluster: RedisCluster;
let refB: CommunityProcess;
let rgB: RunningGateway, ig: RunningGateway;
let receiver: ReplyReceiver;
let homeB: string;
let look: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
  stop.push(cluster.stop);
  const seeds = await demoSeeds();
  const homeA = readManifest(seeds.A).homeCommunityId;
  refB = await spawnCommunity([seeds.B]);
  stop.push(refB.stop);
  homeB = refB.homeCommunityId;
  rgB = await startRG(
    directory({
      homeCommunityId: homeB,
      name: 'B',
      local: { registry: { url: refB.registry } },
      communities: [{ homeCommunityId: homeA, name: 'A', replyTo: ['http://127.0.0.1:*/async-response'] }],
    }),
  );
  stop.push(rgB.close);
  ig = await startIG(
    directory({
      homeCommunityId: homeA,
      name: 'A',
      deadlineMs: 10_000,
      communities: [
        {
          homeCommunityId: homeB,
          name: 'B',
          async: true,
          endpoints: { iti38: { url: `${rgB.url}/iti38`, timeoutMs: 8_000 } },
        },
      ],
      consumers: [{ name: 'PACS', replyTo: ['http://127.0.0.1:*'] }],
    }),
    {
      settings: {
        ...testSettings,
        redis: redisSettingsFromEnv({ REDIS_CLUSTER_NODES: cluster.nodeList }),
        redisKeyPrefix: prefix,
        handoverSecret: 'cluster-test-secret-0123456789abcdef',
      },
    },
  );
  stop.push(ig.close);
  receiver = await startReplyReceiver();
  stop.push(receiver.close);
  look = new Cluster(
    cluster.nodeList.split(',').map((h) => ({ host: '127.0.0.1', port: Number(h.split(':')[1]) })),
  );
  stop.push(async () => void look.disconnect());
}, 90_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s().catch(() => undefined);
});

/** Every key under the prefix on every master: SCAN on a cluster visits each master. */
async function keysByNode(): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const node of scanTargets(look)) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    out.set(node.options.port as number, keys);
  }
  return out;
}

async function slotOf(key: string): Promise<number> {
  return (await look.cluster('KEYSLOT', key)) as number;
}

it('serves async ITI-18 (async ITI-38 to B) through the cluster, keys spread over slots and masters', async () => {
  const replyTo = `${receiver.url}/reply`;
  const sent = await Promise.all(
    Array.from({ length: 30 }, async () => {
      const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, encodeFindDocumentsRequest(PATIENT_1), {
        replyTo,
      });
      expect(a.status).toBe(202);
      return a.messageId;
    }),
  );
  for (const id of sent) {
    const m = await receiver.next(id);
    const res = decodeAdhocQueryResponse(m.envelope.doc, m.envelope.payload);
    expect([res.status, res.objects.length > 0]).toEqual(['Success', true]);
  }
  const byNode = await keysByNode();
  const all = [...byNode.values()].flat();
  // served: for each accepted request, claim: for each answered sub-request, integrity:, replica:.
  expect(all.filter((k) => k.startsWith(`${prefix}served:{`))).toHaveLength(30);
  const claims = all.filter((k) => k.startsWith(`${prefix}claim:{`));
  expect(claims).toHaveLength(30);
  expect([...byNode.values()].filter((keys) => keys.length > 0).length).toBeGreaterThanOrEqual(2);
  const slots = new Set(await Promise.all(all.map(slotOf)));
  expect(slots.size).toBeGreaterThan(20);
  // One request's pending and claim keys share a slot (the uuid is the hash tag).
  for (const k of claims.slice(0, 5)) {
    const id = /\{([^}]+)\}/.exec(k)?.[1] as string;
    expect(await slotOf(`${prefix}${asyncKeys.pending(id)}`)).toBe(await slotOf(k));
  }
  // All DocumentEntries of B share one slot: the remember pipeline is one slot.
  const integrity = all.filter((k) => k.startsWith(`${prefix}integrity:`));
  expect(integrity.length).toBeGreaterThan(0);
  expect(new Set(await Promise.all(integrity.map(slotOf))).size).toBe(1);
});

it('multi-key reads and writes stay within one slot', async () => {
  const client = connectRedis(redisSettingsFromEnv({ REDIS_CLUSTER_NODES: cluster.nodeList })!, {
    keyPrefix: `${prefix}stores:`,
    log: silentLogger,
  });
  try {
    expect(await whenReady(client, 10_000)).toBe(true);
    const integrity = new RedisIntegrityStore(client, 60_000);
    const docs = ['urn:oid:1.1', 'urn:oid:1.2', 'urn:oid:1.3', 'urn:oid:1.4'].flatMap((home) =>
      [1, 2, 3].map((n) => ({
        homeCommunityId: home,
        repositoryUniqueId: '1.9',
        documentUniqueId: `1.9.${n}`,
      })),
    );
    await integrity.remember(docs.map((d, i) => ({ ...d, size: i })));
    expect(await integrity.lookup([...docs].reverse())).toEqual(docs.map((_, i) => ({ size: i })).reverse());

    const cache = new RedisCorrelationCache(client, correlationKeys({ secret: 'k' })!);
    const homes = ['urn:oid:2.1', 'urn:oid:2.2', 'urn:oid:2.3', 'urn:oid:2.4', 'urn:oid:2.5'];
    await cache.store(
      'P1^^^&1.2&ISO',
      homes.map((home, i) => ({
        home,
        correlation: { kind: 'match' as const, patientId: `X${i}` },
        ttlMs: 60_000,
      })),
    );
    const got = await cache.lookup('P1^^^&1.2&ISO', homes);
    expect(homes.map((h) => got.get(h))).toEqual(
      homes.map((_, i) => ({ kind: 'match', patientId: `X${i}` })),
    );

    const released = new RedisReleasedStudies(client, 60_000);
    const studies = Array.from({ length: 6 }, (_, i) => ({
      studyUid: `1.2.${i}`,
      documentUniqueId: `9.9.${i}`,
    }));
    await released.note('urn:oid:3.1', studies);
    const r = await released.lookup(
      'urn:oid:3.1',
      studies.map((s) => s.studyUid),
    );
    expect(r.size).toBe(6);
  } finally {
    await closeRedis(client);
  }
});
