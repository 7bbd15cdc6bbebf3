/**
 * The correlation cache in Redis, shared by every replica of an Initiating Gateway, so that an
 * answer does not depend on which replica served it.
 *
 * Redis holds no patient data in the clear: a key is `xcpd:` + HMAC-SHA256(home, local id) and a
 * value is AES-256-GCM of the correlation, bound to its key. The key material is derived (HKDF) from
 * XCAI_HANDOVER_SECRET or else the TLS key, the secret replicas already share. An unreachable Redis
 * reads as a miss (the gateway discovers again) and a failed write is logged: never an error to the
 * consumer.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Redis } from '../redis/client';
import type { Logger } from '../util/log';
import type { Correlation, CorrelationCache } from './cache';

export function correlationKeys(o: {
  secret?: string;
  tlsKey?: Buffer | string;
}): { mac: Buffer; enc: Buffer } | undefined {
  const ikm = o.secret ?? o.tlsKey;
  if (!ikm) return undefined;
  const salt = 'xcai-correlations';
  return {
    mac: Buffer.from(hkdfSync('sha256', ikm, salt, 'key-names-v1', 32)),
    enc: Buffer.from(hkdfSync('sha256', ikm, salt, 'values-v1', 32)),
  };
}

export class RedisCorrelationCache implements CorrelationCache {
  private lastWarning = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: { mac: Buffer; enc: Buffer },
    private readonly log?: Logger,
  ) {}

  private key(localId: string, home: string): string {
    // The hash tag is a MAC of the local id alone: every community's correlation for one patient
    // shares a Cluster slot, so the MGET / MULTI over them never spans slots.
    const tag = createHmac('sha256', this.keys.mac).update('tag\u0000').update(localId).digest('base64url');
    return `xcpd:{${tag.slice(0, 16)}}:${createHmac('sha256', this.keys.mac).update(home).update('\u0000').update(localId).digest('base64url')}`;
  }

  private seal(key: string, c: Correlation): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.enc, iv);
    cipher.setAAD(Buffer.from(key));
    const body = Buffer.concat([cipher.update(JSON.stringify(c), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  private open(key: string, v: string): Correlation | undefined {
    try {
      const raw = Buffer.from(v, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', this.keys.enc, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(key));
      decipher.setAuthTag(raw.subarray(12, 28));
      const c = JSON.parse(
        Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'),
      ) as Correlation;
      if (c.kind === 'no-match') return c;
      return c.kind === 'match' && typeof c.patientId === 'string' ? c : undefined;
    } catch {
      return undefined; // another deployment's key, or tampered with: a miss
    }
  }

  private warn(what: string, e: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.log?.warn(`correlation cache ${what} failed`, { reason: (e as Error)?.message });
  }

  async lookup(localId: string, homes: string[]): Promise<Map<string, Correlation>> {
    const out = new Map<string, Correlation>();
    if (!homes.length) return out;
    const keys = homes.map((h) => this.key(localId, h));
    try {
      const values = await this.redis.mget(...keys);
      values.forEach((v, i) => {
        const c = v ? this.open(keys[i], v) : undefined;
        if (c) out.set(homes[i], c);
      });
    } catch (e) {
      this.warn('read', e);
    }
    return out;
  }

  async store(
    localId: string,
    entries: { home: string; correlation: Correlation; ttlMs: number }[],
  ): Promise<void> {
    if (!entries.length) return;
    const multi = this.redis.multi();
    for (const e of entries) {
      const k = this.key(localId, e.home);
      multi.set(k, this.seal(k, e.correlation), 'PX', Math.max(1, Math.round(e.ttlMs)));
    }
    try {
      await multi.exec();
    } catch (e) {
      this.warn('write', e);
    }
  }

  async forget(localId: string, home: string): Promise<void> {
    try {
      await this.redis.del(this.key(localId, home));
    } catch (e) {
      this.warn('delete', e);
    }
  }
}
