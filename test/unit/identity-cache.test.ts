/**
 * The correlation cache: bounded and expiring in process; in the real Redis shared by replicas
 * with the same key material, with neither patient id in the clear, and a miss (never an error)
 * when Redis is gone.
 */
import {
  connectRedis,
  correlationKeys,
  MemoryCorrelationCache,
  RedisCorrelationCache,
  silentLogger,
  whenReady,
  type Redis,
} from '@xcai/shared';
import { deleteUnder, inspector, keysUnder, REDIS_URL, uniquePrefix } from '../support/redis';

const LOCAL = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const REMOTE = 'B-4711^^^&1.3.6.1.4.1.21367.13.20.2000&ISO';
const B = 'urn:oid:1.3.6.1.4.1.21367.13.70.102';
const C = 'urn:oid:1.3.6.1.4.1.21367.13.70.103';

describe('in process', () => {
  it('expires entries and keeps at most maxEntries, least recently used first out', async () => {
    let now = 1_000;
    const cache = new MemoryCorrelationCache(10, () => now);
    await cache.store(LOCAL, [
      { home: B, correlation: { kind: 'match', patientId: REMOTE }, ttlMs: 1_000 },
      { home: C, correlation: { kind: 'no-match' }, ttlMs: 100 },
    ]);
    expect(await cache.lookup(LOCAL, [B, C])).toEqual(
      new Map([
        [B, { kind: 'match', patientId: REMOTE }],
        [C, { kind: 'no-match' }],
      ]),
    );
    now += 500;
    expect([...(await cache.lookup(LOCAL, [B, C])).keys()]).toEqual([B]);
    for (let i = 0; i < 100; i++)
      await cache.store(`P${i}^^^&1.2&ISO`, [{ home: B, correlation: { kind: 'no-match' }, ttlMs: 10_000 }]);
    expect(cache.size).toBe(10);
    expect(await cache.lookup(LOCAL, [B])).toEqual(new Map());
    expect((await cache.lookup('P99^^^&1.2&ISO', [B])).size).toBe(1);
    await cache.forget('P99^^^&1.2&ISO', B);
    expect((await cache.lookup('P99^^^&1.2&ISO', [B])).size).toBe(0);
  });
});

describe('in Redis', () => {
  const prefix = uniquePrefix('correlations');
  const look = inspector();
  const clients: Redis[] = [];
  const client = async () => {
    const c = connectRedis(REDIS_URL, { keyPrefix: prefix, log: silentLogger });
    clients.push(c);
    expect(await whenReady(c, 5_000)).toBe(true);
    return c;
  };
  afterAll(async () => {
    await deleteUnder(look, prefix);
    look.disconnect();
    for (const c of clients) c.disconnect();
  });

  it('two replicas with the same secret share correlations; Redis holds no patient id; TTLs are set', async () => {
    const keys = correlationKeys({ secret: 'shared-by-both-replicas' })!;
    const one = new RedisCorrelationCache(await client(), keys);
    const two = new RedisCorrelationCache(await client(), keys);
    await one.store(LOCAL, [
      { home: B, correlation: { kind: 'match', patientId: REMOTE }, ttlMs: 60_000 },
      { home: C, correlation: { kind: 'no-match' }, ttlMs: 5_000 },
    ]);
    expect(await two.lookup(LOCAL, [B, C, 'urn:oid:1.2.9'])).toEqual(
      new Map([
        [B, { kind: 'match', patientId: REMOTE }],
        [C, { kind: 'no-match' }],
      ]),
    );
    const stored = await keysUnder(look, prefix);
    expect(stored.size).toBe(2);
    const ttls = [...stored.values()].sort((a, b) => a - b);
    expect(ttls[0]).toBeGreaterThan(0);
    expect(ttls[0]).toBeLessThanOrEqual(5_000);
    expect(ttls[1]).toBeGreaterThan(5_000);
    for (const k of stored.keys()) {
      const v = (await look.get(k)) ?? '';
      for (const secret of ['JP1001', 'B-4711', '1.3.6.1.4.1.21367.13.20', 'match'])
        expect(`${k} ${v} ${Buffer.from(v, 'base64').toString('latin1')}`).not.toContain(secret);
    }
    await two.forget(LOCAL, B);
    expect([...(await one.lookup(LOCAL, [B, C])).keys()]).toEqual([C]);
  });

  it('another deployment’s key reads nothing, and a value moved to another key does not open', async () => {
    const mine = new RedisCorrelationCache(await client(), correlationKeys({ secret: 'a' })!);
    const theirs = new RedisCorrelationCache(await client(), correlationKeys({ secret: 'b' })!);
    await mine.store('X1^^^&1.2&ISO', [
      { home: B, correlation: { kind: 'match', patientId: REMOTE }, ttlMs: 60_000 },
    ]);
    expect((await theirs.lookup('X1^^^&1.2&ISO', [B])).size).toBe(0);
    // Swap the sealed value onto the key of another patient: it does not decrypt there.
    await mine.store('X2^^^&1.2&ISO', [{ home: B, correlation: { kind: 'no-match' }, ttlMs: 60_000 }]);
    const before = await keysUnder(look, prefix);
    const all = [...before.keys()];
    const values = await Promise.all(all.map((k) => look.get(k)));
    await Promise.all(all.map((k, i) => look.set(k, values[(i + 1) % all.length] ?? '', 'PX', 60_000)));
    const x1 = await mine.lookup('X1^^^&1.2&ISO', [B]);
    const x2 = await mine.lookup('X2^^^&1.2&ISO', [B]);
    expect(x1.get(B)?.kind === 'match' || x2.get(B)?.kind === 'no-match').toBe(false);
  });

  it('without Redis it misses instead of failing', async () => {
    const gone = connectRedis('redis://127.0.0.1:1', { keyPrefix: prefix, log: silentLogger });
    clients.push(gone);
    const cache = new RedisCorrelationCache(gone, correlationKeys({ secret: 'x' })!);
    await cache.store(LOCAL, [{ home: B, correlation: { kind: 'no-match' }, ttlMs: 1_000 }]);
    expect((await cache.lookup(LOCAL, [B])).size).toBe(0);
    gone.disconnect();
  });
});
