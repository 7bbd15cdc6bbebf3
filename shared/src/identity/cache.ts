/**
 * Patient correlations the Initiating Gateway learned with ITI-55: our patient id → the id of the
 * same patient in another community, or "that community does not know the patient". Kept with a
 * TTL (directory `patientIdentity.cacheTtlMs` / `noMatchTtlMs`), in Redis when the gateway has one
 * (shared by every replica: redis-cache.ts), else in this process, bounded in entries.
 */

/** What we know of one patient in one community. */
export type Correlation = { kind: 'match'; patientId: string } | { kind: 'no-match' };

export interface CorrelationCache {
  /** The correlations of one local patient id in the given communities (misses are absent). */
  lookup(localId: string, homes: string[]): Promise<Map<string, Correlation>>;
  /** Stores correlations learned together (one round trip); failures are the cache's problem. */
  store(localId: string, entries: { home: string; correlation: Correlation; ttlMs: number }[]): Promise<void>;
  /** Forgets a correlation (e.g. the community answered ITI-38 that the id is unknown). */
  forget(localId: string, home: string): Promise<void>;
}

interface Entry {
  correlation: Correlation;
  expires: number;
}

/** In-process, least recently used beyond `maxEntries`, expired on read. */
export class MemoryCorrelationCache implements CorrelationCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  private static key(localId: string, home: string): string {
    return `${home}\u0000${localId}`;
  }

  async lookup(localId: string, homes: string[]): Promise<Map<string, Correlation>> {
    const out = new Map<string, Correlation>();
    const t = this.now();
    for (const home of homes) {
      const k = MemoryCorrelationCache.key(localId, home);
      const e = this.entries.get(k);
      if (!e) continue;
      this.entries.delete(k);
      if (e.expires <= t) continue;
      this.entries.set(k, e); // most recently used last
      out.set(home, e.correlation);
    }
    return out;
  }

  async store(
    localId: string,
    entries: { home: string; correlation: Correlation; ttlMs: number }[],
  ): Promise<void> {
    const t = this.now();
    for (const e of entries) {
      const k = MemoryCorrelationCache.key(localId, e.home);
      this.entries.delete(k);
      this.entries.set(k, { correlation: e.correlation, expires: t + e.ttlMs });
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(k);
    }
  }

  async forget(localId: string, home: string): Promise<void> {
    this.entries.delete(MemoryCorrelationCache.key(localId, home));
  }
}
