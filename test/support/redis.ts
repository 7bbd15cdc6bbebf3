/** The real Redis the async tests run against (REDIS_URL, default the local one), one key prefix per run. */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export function uniquePrefix(tag: string): string {
  return `xcai-test:${tag}:${process.pid}-${randomBytes(4).toString('hex')}:`;
}

/**
 * The key prefix of the gateways a test file starts as processes (one per file, as this module is
 * loaded once per file): their keys never meet another file's or another run's in a shared Redis
 * (REDIS_URL reaches them from the environment under .ci/run).
 */
export const FILE_PREFIX = uniquePrefix('file');

/** A plain client (no key prefix) for looking at what the gateway stored. */
export function inspector(url = REDIS_URL): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true });
}

/** Every key under `prefix`, with its TTL in ms. */
export async function keysUnder(r: Redis, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) out.set(k, await r.pttl(k));
  } while (cursor !== '0');
  return out;
}

export async function deleteUnder(r: Redis, prefix: string): Promise<void> {
  const keys = [...(await keysUnder(r, prefix)).keys()];
  for (let i = 0; i < keys.length; i += 500) await r.del(...keys.slice(i, i + 500));
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function stopProcess(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}
