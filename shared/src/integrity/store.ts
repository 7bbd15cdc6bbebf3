/**
 * Hash and size of registered documents, as the registries announced them in query results
 * (IHE XCA-I M2). The Initiating Gateway remembers them from the ITI-18/ITI-38 answers that pass
 * through it and checks later ITI-43/ITI-39 retrieves against them.
 */
export interface DocumentIntegrity {
  /** SHA-1, lower-case hex. */
  hash?: string;
  size?: number;
}

export interface DocumentKey {
  homeCommunityId: string;
  repositoryUniqueId: string;
  documentUniqueId: string;
}

export interface IntegrityStore {
  remember(entries: (DocumentKey & DocumentIntegrity)[]): Promise<void>;
  lookup(keys: DocumentKey[]): Promise<(DocumentIntegrity | undefined)[]>;
}

export function integrityKey(k: DocumentKey): string {
  return `${k.homeCommunityId}|${k.repositoryUniqueId}|${k.documentUniqueId}`;
}

/** In-process store with a TTL and a bounded number of entries (oldest evicted first). */
export class MemoryIntegrityStore implements IntegrityStore {
  private readonly map = new Map<string, { value: DocumentIntegrity; expires: number }>();

  constructor(
    private readonly ttlMs = 24 * 3600_000,
    private readonly maxEntries = 100_000,
  ) {}

  async remember(entries: (DocumentKey & DocumentIntegrity)[]): Promise<void> {
    const expires = Date.now() + this.ttlMs;
    for (const e of entries) {
      if (e.hash === undefined && e.size === undefined) continue;
      const k = integrityKey(e);
      this.map.delete(k);
      this.map.set(k, { value: { hash: e.hash, size: e.size }, expires });
    }
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }

  async lookup(keys: DocumentKey[]): Promise<(DocumentIntegrity | undefined)[]> {
    const now = Date.now();
    return keys.map((k) => {
      const hit = this.map.get(integrityKey(k));
      if (!hit) return undefined;
      if (hit.expires < now) {
        this.map.delete(integrityKey(k));
        return undefined;
      }
      return hit.value;
    });
  }
}
