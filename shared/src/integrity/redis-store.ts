import { createHash } from 'node:crypto';
import type { Redis } from '../redis/client';
import { bySlotTag, hashTag } from '../redis/keys';
import type { Logger } from '../util/log';
import { integrityKey, type DocumentIntegrity, type DocumentKey, type IntegrityStore } from './store';

const SHA1_HEX = /^[0-9a-f]{40}$/;

/**
 * Hash/size of documents announced in query results, shared by every Initiating Gateway replica.
 * Key `integrity:{<tag of home>}:<sha256 of home|repository|document>` (the document ids themselves
 * are not stored; the hash tag keeps one community's documents in one Cluster slot, so one
 * pipeline / MGET per community answers a whole query or retrieve),
 * value `<sha1 hex>|<size>` (at most 60 bytes), TTL `ttlMs`. Values that do not look like a SHA-1 and
 * a size are not stored. If Redis is unreachable, `remember` fails (the caller logs it) and `lookup`
 * answers "not known", as for a document never seen: retrieves go on, unchecked (see README.md).
 */
export class RedisIntegrityStore implements IntegrityStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs = 24 * 3600_000,
    private readonly log?: Logger,
  ) {}

  async remember(entries: (DocumentKey & DocumentIntegrity)[]): Promise<void> {
    const valued = entries.flatMap((e) => {
      const value = encode(e);
      return value ? [{ key: redisKey(e), value }] : [];
    });
    if (valued.length === 0) return;
    await Promise.all(
      [...bySlotTag(valued, (v) => v.key).values()].map(async (group) => {
        const p = this.redis.pipeline();
        for (const { item } of group) p.set(item.key, item.value, 'PX', this.ttlMs);
        const results = await p.exec();
        const failed = results?.find(([err]) => err);
        if (failed) throw failed[0] as Error;
      }),
    );
  }

  async lookup(keys: DocumentKey[]): Promise<(DocumentIntegrity | undefined)[]> {
    if (keys.length === 0) return [];
    try {
      const out: (DocumentIntegrity | undefined)[] = keys.map(() => undefined);
      await Promise.all(
        [...bySlotTag(keys.map(redisKey), (k) => k).values()].map(async (group) => {
          const values = await this.redis.mget(group.map((g) => g.item));
          group.forEach((g, i) => (out[g.at] = decode(values[i])));
        }),
      );
      return out;
    } catch (e) {
      this.log?.warn('integrity store unavailable: documents not checked against query metadata', {
        reason: (e as Error).message,
      });
      return keys.map(() => undefined);
    }
  }
}

function redisKey(k: DocumentKey): string {
  return `integrity:${hashTag(k.homeCommunityId)}:${createHash('sha256').update(integrityKey(k)).digest('base64url')}`;
}

function encode(e: DocumentIntegrity): string | undefined {
  const hash = e.hash?.toLowerCase();
  const hashOk = hash !== undefined && SHA1_HEX.test(hash);
  const sizeOk = e.size !== undefined && Number.isSafeInteger(e.size) && e.size >= 0;
  if (!hashOk && !sizeOk) return undefined;
  return `${hashOk ? hash : ''}|${sizeOk ? e.size : ''}`;
}

function decode(v: string | null): DocumentIntegrity | undefined {
  if (!v) return undefined;
  const [hash, size] = v.split('|');
  const out: DocumentIntegrity = {};
  if (hash && SHA1_HEX.test(hash)) out.hash = hash;
  if (size && /^\d{1,16}$/.test(size)) out.size = Number(size);
  return out.hash === undefined && out.size === undefined ? undefined : out;
}
