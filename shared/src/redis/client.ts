import Redis from 'ioredis';
import type { Logger } from '../util/log';

export type { Redis };

export interface RedisConnectOptions {
  /** Prepended to every key (one deployment, or one test run). Default `xcai:`. */
  keyPrefix?: string;
  log: Logger;
}

/**
 * A Redis client that never queues commands while disconnected (they fail at once, so callers can
 * degrade), reconnects forever with a capped backoff, and logs connection trouble at most every 10 s.
 */
export function connectRedis(url: string, o: RedisConnectOptions): Redis {
  const log = o.log.child({ component: 'redis' });
  const client = new Redis(url, {
    keyPrefix: o.keyPrefix ?? 'xcai:',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
  });
  let lastLog = 0;
  client.on('error', (e: Error) => {
    const now = Date.now();
    if (now - lastLog < 10_000) return;
    lastLog = now;
    log.warn('redis unavailable', { reason: e.message });
  });
  client.on('ready', () => log.info('redis connected'));
  return client;
}

/** Resolves once the client is ready, or after `ms` (the gateway starts either way). */
export function whenReady(client: Redis, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      client.off('ready', on);
      resolve(false);
    }, ms);
    const on = () => {
      clearTimeout(t);
      resolve(true);
    };
    client.once('ready', on);
  });
}

/** Closes without waiting for a server that is gone. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  await client.quit().catch(() => client.disconnect());
}
