/**
 * Correlation state of the asynchronous exchange (ITI TF-2 Appendix V), shared by the replicas of a
 * gateway through Redis (redis-store.ts) or kept in-process for a single-process gateway (below).
 * No PHI is stored: ids, community ids, actions, deadlines and URLs only (see README.md).
 */

/** A request we sent with a non-anonymous ReplyTo, waiting for its response. */
export interface PendingRecord {
  /** Replica that sent it and holds the waiting transaction. */
  owner: string;
  /** The inbound transaction (fan-out) this sub-request belongs to (random id, no PHI). */
  fanout: string;
  /** homeCommunityId of the community asked: only its gateways may answer. */
  community: string;
  /** Expected response wsa:Action. */
  action: string;
  /** Epoch ms after which the response is no longer awaited. */
  deadline: number;
  /** Endpoint the request went to (audit of rejected answers). */
  endpoint: string;
}

/** What became of a pending request once its response arrived, or it was given up. */
export type ClaimState = 'answered' | 'expired' | 'cancelled';

export interface CorrelationStore {
  readonly kind: 'redis' | 'memory';
  /** True when the store can take writes now (Redis connected). */
  available(): boolean;
  putPending(id: string, rec: PendingRecord, ttlMs: number): Promise<void>;
  getPending(id: string): Promise<PendingRecord | undefined>;
  dropPending(id: string): Promise<void>;
  /**
   * Records what became of `id` unless something was recorded before; returns 'first' when this
   * call recorded it, else the earlier state (duplicates, late answers).
   */
  claim(id: string, state: ClaimState, ttlMs: number): Promise<'first' | ClaimState>;
  claimState(id: string): Promise<ClaimState | undefined>;
  /** Served side: remembers an inbound request's MessageID (hashed); false when seen before. */
  markServed(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Publishes where a replica can be reached for handovers. */
  registerReplica(id: string, url: string, ttlMs: number): Promise<void>;
  replicaUrl(id: string): Promise<string | undefined>;
  dropReplica(id: string): Promise<void>;
  /** Called whenever the store (re)connects, to restore this replica's state after a Redis restart. */
  onReady(cb: () => void): void;
  /**
   * True for a while after the store came back (a Redis restart or a Sentinel failover): records
   * written just before may be missing until their owners have written them again.
   */
  recovering(): boolean;
  /** How long the store has been unreachable (0 when available). */
  unavailableMs(): number;
  /** Numbers for readiness output and the benchmark. */
  stats(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export function encodePending(r: PendingRecord): string {
  return JSON.stringify([r.owner, r.fanout, r.community, r.action, r.deadline, r.endpoint]);
}

export function decodePending(s: string | null | undefined): PendingRecord | undefined {
  if (!s) return undefined;
  try {
    const a = JSON.parse(s) as unknown;
    if (!Array.isArray(a) || a.length !== 6 || typeof a[4] !== 'number') return undefined;
    if (![0, 1, 2, 3, 5].every((i) => typeof a[i] === 'string')) return undefined;
    return { owner: a[0], fanout: a[1], community: a[2], action: a[3], deadline: a[4], endpoint: a[5] };
  } catch {
    return undefined;
  }
}

const CLAIMS: readonly string[] = ['answered', 'expired', 'cancelled'];
export function asClaimState(v: string | null | undefined): ClaimState | undefined {
  return v && CLAIMS.includes(v) ? (v as ClaimState) : undefined;
}

/** A map whose entries expire; swept lazily and by an unref'd timer. */
class ExpiringMap<V> {
  private readonly map = new Map<string, { v: V; until: number }>();
  private readonly timer: NodeJS.Timeout;
  constructor(sweepMs = 5_000) {
    this.timer = setInterval(() => this.sweep(), sweepMs);
    this.timer.unref();
  }
  get(k: string): V | undefined {
    const e = this.map.get(k);
    if (!e) return undefined;
    if (e.until <= Date.now()) {
      this.map.delete(k);
      return undefined;
    }
    return e.v;
  }
  set(k: string, v: V, ttlMs: number): void {
    this.map.set(k, { v, until: Date.now() + Math.max(1, ttlMs) });
  }
  delete(k: string): void {
    this.map.delete(k);
  }
  get size(): number {
    return this.map.size;
  }
  sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.map) if (e.until <= now) this.map.delete(k);
  }
  close(): void {
    clearInterval(this.timer);
    this.map.clear();
  }
}

/** The single-process store (no REDIS_URL): same semantics, nothing shared. */
export class MemoryCorrelationStore implements CorrelationStore {
  readonly kind = 'memory' as const;
  private readonly pending = new ExpiringMap<PendingRecord>();
  private readonly claims = new ExpiringMap<ClaimState>();
  private readonly served = new ExpiringMap<string>();
  private readonly replicas = new ExpiringMap<string>();

  available(): boolean {
    return true;
  }
  async putPending(id: string, rec: PendingRecord, ttlMs: number): Promise<void> {
    this.pending.set(id, rec, ttlMs);
  }
  async getPending(id: string): Promise<PendingRecord | undefined> {
    return this.pending.get(id);
  }
  async dropPending(id: string): Promise<void> {
    this.pending.delete(id);
  }
  async claim(id: string, state: ClaimState, ttlMs: number): Promise<'first' | ClaimState> {
    const had = this.claims.get(id);
    if (had) return had;
    this.claims.set(id, state, ttlMs);
    return 'first';
  }
  async claimState(id: string): Promise<ClaimState | undefined> {
    return this.claims.get(id);
  }
  async markServed(key: string, owner: string, ttlMs: number): Promise<boolean> {
    if (this.served.get(key) !== undefined) return false;
    this.served.set(key, owner, ttlMs);
    return true;
  }
  async registerReplica(id: string, url: string, ttlMs: number): Promise<void> {
    this.replicas.set(id, url, ttlMs);
  }
  async replicaUrl(id: string): Promise<string | undefined> {
    return this.replicas.get(id);
  }
  async dropReplica(id: string): Promise<void> {
    this.replicas.delete(id);
  }
  onReady(): void {}
  recovering(): boolean {
    return false;
  }
  unavailableMs(): number {
    return 0;
  }
  async stats(): Promise<Record<string, unknown>> {
    return { pending: this.pending.size, claims: this.claims.size, served: this.served.size };
  }
  async close(): Promise<void> {
    for (const m of [this.pending, this.claims, this.served, this.replicas]) m.close();
  }
}
