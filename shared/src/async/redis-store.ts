import type { Redis } from '../redis/client';
import {
  asClaimState,
  decodePending,
  encodePending,
  type ClaimState,
  type CorrelationStore,
  type PendingRecord,
} from './store';

/**
 * Key names. `{…}` is the Redis Cluster hash tag: a request's `pending:` and `claim:` share a slot;
 * every command here touches one key, so no command ever spans slots.
 */
export const asyncKeys = {
  pending: (id: string) => `pending:{${id}}`,
  claim: (id: string) => `claim:{${id}}`,
  served: (key: string) => `served:{${key}}`,
  replica: (id: string) => `replica:{${id}}`,
};

/**
 * Correlation state in Redis, shared by every replica. Key families (under the client's prefix),
 * all written with a TTL (see README.md):
 *   pending:{<uuid>} one outbound async request awaiting its response
 *   claim:{<uuid>}   what became of it (answered / expired / cancelled), for duplicates and late answers
 *   served:{<sha256>} an inbound async request being served (duplicate MessageIDs are not run twice)
 *   replica:{<id>}   where a replica takes handovers (refreshed by a heartbeat)
 */
export class RedisCorrelationStore implements CorrelationStore {
  readonly kind = 'redis' as const;

  private readies = 0;
  private lastReady = 0;
  private downSince: number | undefined;

  constructor(
    private readonly redis: Redis,
    /** How long after a re-connection records may still be missing (owners write them again). */
    private readonly recoveryMs = RECOVERY_MS,
  ) {
    if (redis.status === 'ready') this.readies = 1;
    else this.downSince = Date.now();
    redis.on('ready', () => {
      this.readies++;
      this.lastReady = Date.now();
      this.downSince = undefined;
    });
    const down = () => (this.downSince ??= Date.now());
    redis.on('close', down);
    redis.on('end', down);
  }

  unavailableMs(): number {
    if (this.available()) return 0;
    return Date.now() - (this.downSince ?? Date.now());
  }

  recovering(): boolean {
    return this.readies > 1 && Date.now() - this.lastReady < this.recoveryMs;
  }

  available(): boolean {
    return this.redis.status === 'ready';
  }

  async putPending(id: string, rec: PendingRecord, ttlMs: number): Promise<void> {
    await this.redis.set(asyncKeys.pending(id), encodePending(rec), 'PX', ttl(ttlMs));
  }

  async getPending(id: string): Promise<PendingRecord | undefined> {
    return decodePending(await this.redis.get(asyncKeys.pending(id)));
  }

  async dropPending(id: string): Promise<void> {
    await this.redis.del(asyncKeys.pending(id));
  }

  async claim(id: string, state: ClaimState, ttlMs: number): Promise<'first' | ClaimState> {
    const before = await this.redis.set(asyncKeys.claim(id), state, 'PX', ttl(ttlMs), 'NX', 'GET');
    return before === null ? 'first' : (asClaimState(before) ?? 'answered');
  }

  async claimState(id: string): Promise<ClaimState | undefined> {
    return asClaimState(await this.redis.get(asyncKeys.claim(id)));
  }

  async markServed(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(asyncKeys.served(key), owner, 'PX', ttl(ttlMs), 'NX')) === 'OK';
  }

  async registerReplica(id: string, url: string, ttlMs: number): Promise<void> {
    await this.redis.set(asyncKeys.replica(id), url, 'PX', ttl(ttlMs));
  }

  async replicaUrl(id: string): Promise<string | undefined> {
    return (await this.redis.get(asyncKeys.replica(id))) ?? undefined;
  }

  async dropReplica(id: string): Promise<void> {
    await this.redis.del(asyncKeys.replica(id));
  }

  onReady(cb: () => void): void {
    this.redis.on('ready', cb);
  }

  async stats(): Promise<Record<string, unknown>> {
    return { status: this.redis.status };
  }

  async close(): Promise<void> {
    // The client is owned by whoever created it (it may be shared with the integrity store).
  }
}

/** Replicas re-write their records within their own reconnect (≤ 2 s backoff) plus a Sentinel query. */
const RECOVERY_MS = 10_000;

function ttl(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}
