import IORedis, { Cluster, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from '../util/log';
import { redisSettingsFromUrl, type RedisSettings } from './settings';

/** A single node / Sentinel-managed primary (`IORedis`) or a Redis Cluster: the same commands. */
export type Redis = IORedis | Cluster;
export type { RedisSettings };

export interface RedisConnectOptions {
  /** Prepended to every key (one deployment, or one test run). Default `xcai:`. */
  keyPrefix?: string;
  log: Logger;
}

/**
 * A Redis client that never queues commands while disconnected (they fail at once, so callers can
 * degrade), reconnects forever with a capped backoff, and logs connection trouble at most every 10 s.
 * Sentinel: ioredis asks the sentinels for the primary on every (re)connect (its failover
 * detector is left off: it raced with reconnects and could end the client); a connection that
 * finds itself on a demoted primary (READONLY) reconnects.
 * Cluster: ioredis routes each command to the master of its slot (keys carry hash tags, see
 * `async/README.md`). TLS always verifies the server's certificate and name.
 */
export function connectRedis(target: string | RedisSettings, o: RedisConnectOptions): Redis {
  const s = typeof target === 'string' ? redisSettingsFromUrl(target) : target;
  const log = o.log.child({ component: 'redis' });
  const keyPrefix = o.keyPrefix ?? 'xcai:';
  const tls: ConnectionOptions | undefined = s.tls
    ? {
        ca: s.tls.ca,
        cert: s.tls.cert,
        key: s.tls.key,
        servername: s.tls.servername,
        rejectUnauthorized: true,
      }
    : undefined;
  const common: RedisOptions = {
    username: s.username,
    password: s.password,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 1,
    tls,
    reconnectOnError: (e) => (/^READONLY/.test(e.message) ? 2 : false),
  };
  const backoff = (times: number) => Math.min(100 * times, 2_000);
  let client: Redis;
  if (s.mode === 'cluster') {
    client = new Cluster(s.nodes, {
      keyPrefix,
      enableOfflineQueue: false,
      clusterRetryStrategy: backoff,
      slotsRefreshTimeout: 2_000,
      redisOptions: common,
    });
  } else {
    const node: RedisOptions = {
      ...common,
      keyPrefix,
      enableOfflineQueue: false,
      db: s.db,
      retryStrategy: backoff,
    };
    client =
      s.mode === 'sentinel'
        ? new IORedis({
            ...node,
            sentinels: s.sentinels,
            name: s.name,
            sentinelUsername: s.sentinelUsername,
            sentinelPassword: s.sentinelPassword,
            enableTLSForSentinelMode: !!tls,
            sentinelTLS: tls,
            sentinelRetryStrategy: backoff,
          })
        : new IORedis({ ...node, host: s.host, port: s.port });
  }
  let lastLog = 0;
  client.on('error', (e: Error) => {
    const now = Date.now();
    if (now - lastLog < 10_000) return;
    lastLog = now;
    log.warn('redis unavailable', { target: describeRedis(s), reason: e.message });
  });
  client.on('ready', () => log.info('redis connected', { target: describeRedis(s) }));
  return client;
}

/** For logs: where, how, as whom — never a password. */
export function describeRedis(s: RedisSettings): string {
  const hosts = (l: { host: string; port: number }[]) => l.map((h) => `${h.host}:${h.port}`).join(',');
  const where =
    s.mode === 'cluster'
      ? `cluster ${hosts(s.nodes)}`
      : s.mode === 'sentinel'
        ? `sentinel ${s.name} via ${hosts(s.sentinels)}`
        : `${s.host}:${s.port}`;
  return `${where}${s.tls ? ' (tls)' : ''}${s.username ? ` as ${s.username}` : ''}`;
}

/** The masters of a cluster, or the one connection otherwise: what SCAN / DBSIZE must visit. */
export function scanTargets(client: Redis): IORedis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
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
