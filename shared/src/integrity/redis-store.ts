import { createHash } from 'node:crypto';
import type { Redis } from '../redis/client';
import type { Logger } from '../util/log';
import { integrityKey, type DocumentIntegrity, type DocumentKey, type IntegrityStore } from './store';

const SHA1_HEX = /^[0-9a-f]{40}$/;

/**
 * Hash/size of documents announced in query results, shared by every Initiating Gateway replica.
 * Key `integrity:<sha256 of home|repository|document>` (the document ids themselves are not stored),
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
    const p = this.redis.pipeline();
    let n = 0;
    for (const e of entries) {
      const value = encode(e);
      if (!value) continue;
      p.set(redisKey(e), value, 'PX', this.ttlMs);
      n++;
    }
    if (n === 0) return;
    const results = await p.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0] as Error;
  }

  async lookup(keys: DocumentKey[]): Promise<(DocumentIntegrity | undefined)[]> {
    if (keys.length === 0) return [];
    try {
      const values = await this.redis.mget(keys.map(redisKey));
      return values.map(decode);
    } catch (e) {
      this.log?.warn('integrity store unavailable: documents not checked against query metadata', {
        reason: (e as Error).message,
      });
      return keys.map(() => undefined);
    }
  }
}

function redisKey(k: DocumentKey): string {
  return `integrity:${createHash('sha256').update(integrityKey(k)).digest('base64url')}`;
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
