/** The correlation stores (in-process and Redis at REDIS_URL) and the Redis integrity store. */
import {
  asyncKeys,
  connectRedis,
  closeRedis,
  MemoryCorrelationStore,
  RedisCorrelationStore,
  RedisIntegrityStore,
  silentLogger,
  whenReady,
  type CorrelationStore,
  type Redis,
} from '@xcai/shared';
import { deleteUnder, inspector, keysUnder, REDIS_URL, uniquePrefix } from '../support/redis';

const prefix = uniquePrefix('async-store');
let client: Redis;
const look = inspector();

beforeAll(async () => {
  client = connectRedis(REDIS_URL, { keyPrefix: prefix, log: silentLogger });
  expect(await whenReady(client, 5000)).toBe(true);
});

afterAll(async () => {
  await deleteUnder(look, prefix);
  look.disconnect();
  await closeRedis(client);
});

const rec = {
  owner: 'r1',
  fanout: 'f1',
  community: 'urn:oid:1.2.4',
  action: 'urn:ihe:iti:2007:CrossGatewayQueryResponse',
  deadline: Date.now() + 5000,
  endpoint: 'http://rg/iti38',
};

describe.each([
  ['memory', () => new MemoryCorrelationStore() as CorrelationStore],
  ['redis', () => new RedisCorrelationStore(client) as CorrelationStore],
])('%s correlation store', (_kind, make) => {
  let store: CorrelationStore;
  beforeAll(() => {
    store = make();
  });
  afterAll(() => store.close());

  it('keeps a pending record until dropped', async () => {
    const id = crypto.randomUUID();
    await store.putPending(id, rec, 10_000);
    expect(await store.getPending(id)).toEqual(rec);
    await store.dropPending(id);
    expect(await store.getPending(id)).toBeUndefined();
  });

  it('lets the first claim win and reports it to later ones', async () => {
    const id = crypto.randomUUID();
    expect(await store.claim(id, 'answered', 10_000)).toBe('first');
    expect(await store.claim(id, 'expired', 10_000)).toBe('answered');
    expect(await store.claimState(id)).toBe('answered');
    expect(await store.claimState(crypto.randomUUID())).toBeUndefined();
  });

  it('remembers a served MessageID once', async () => {
    const k = crypto.randomUUID();
    expect(await store.markServed(k, 'r1', 10_000)).toBe(true);
    expect(await store.markServed(k, 'r2', 10_000)).toBe(false);
  });

  it('forgets everything after its TTL', async () => {
    const id = crypto.randomUUID();
    await store.putPending(id, rec, 30);
    await store.claim(id, 'expired', 30);
    await store.registerReplica(id, 'http://10.0.0.1:8080', 30);
    await new Promise((r) => setTimeout(r, 80));
    expect([await store.getPending(id), await store.claimState(id), await store.replicaUrl(id)]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe('Redis key layout', () => {
  it('stores no more than ids, URLs and a deadline, every key with a TTL', async () => {
    const store = new RedisCorrelationStore(client);
    const id = crypto.randomUUID();
    await store.putPending(id, rec, 60_000);
    await store.claim(id, 'answered', 60_000);
    await store.markServed('abc', 'r1', 60_000);
    await store.registerReplica('r1', 'http://10.0.0.1:8080', 60_000);
    const keys = await keysUnder(look, prefix);
    for (const k of [
      asyncKeys.pending(id),
      asyncKeys.claim(id),
      asyncKeys.served('abc'),
      asyncKeys.replica('r1'),
    ]) {
      const ttl = keys.get(`${prefix}${k}`);
      expect([k, ttl !== undefined && ttl > 0 && ttl <= 60_000]).toEqual([k, true]);
    }
    expect((await look.get(`${prefix}${asyncKeys.pending(id)}`))?.length).toBeLessThan(300);
    await store.dropReplica('r1');
    expect(await store.replicaUrl('r1')).toBeUndefined();
  });

  it('a disconnected client fails fast instead of queueing', async () => {
    const dead = connectRedis('redis://127.0.0.1:9', { keyPrefix: prefix, log: silentLogger });
    const store = new RedisCorrelationStore(dead);
    expect(store.available()).toBe(false);
    await expect(store.putPending('x', rec, 1000)).rejects.toThrow();
    await closeRedis(dead);
  });
});

describe('Redis integrity store', () => {
  const key = {
    homeCommunityId: 'urn:oid:1.2.4',
    repositoryUniqueId: '1.2.3.4',
    documentUniqueId: '1.2.3.4.5',
  };

  it('shares hash/size under a hashed key with a TTL, and stores only values that look right', async () => {
    const a = new RedisIntegrityStore(client, 60_000);
    const b = new RedisIntegrityStore(client, 60_000); // another replica
    await a.remember([
      { ...key, hash: 'DA39A3EE5E6B4B0D3255BFEF95601890AFD80709', size: 0 },
      { ...key, documentUniqueId: 'bad', hash: 'x'.repeat(5000), size: -1 },
    ]);
    expect(
      await b.lookup([key, { ...key, documentUniqueId: 'bad' }, { ...key, documentUniqueId: 'never' }]),
    ).toEqual([{ hash: 'da39a3ee5e6b4b0d3255bfef95601890afd80709', size: 0 }, undefined, undefined]);
    const stored = [...(await keysUnder(look, `${prefix}integrity:`))];
    expect(stored).toHaveLength(1);
    expect(stored[0][0]).not.toContain('1.2.3.4');
    expect(stored[0][1]).toBeGreaterThan(0);
  });

  it('answers "not known" when Redis is unreachable', async () => {
    const dead = connectRedis('redis://127.0.0.1:9', { keyPrefix: prefix, log: silentLogger });
    const s = new RedisIntegrityStore(dead);
    expect(await s.lookup([key])).toEqual([undefined]);
    await expect(s.remember([{ ...key, size: 1 }])).rejects.toThrow();
    await closeRedis(dead);
  });
});
