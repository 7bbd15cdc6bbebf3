/**
 * Real Redis topologies on loopback for the high-availability tests, from Debian's redis-server /
 * redis-sentinel / redis-cli: a primary + replica + three sentinels, a three-master Cluster, and a
 * TLS + ACL server. Random ports, temp dirs, no persistence (`--save ''`); `stop()` kills them all.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis, { type RedisOptions } from 'ioredis';
import { freePort, stopProcess } from './redis';

const run = promisify(execFile);

export interface RedisNode {
  port: number;
  proc: ChildProcess;
  /** SIGKILL, no goodbye: what a crashed node looks like to its clients. */
  kill(): Promise<void>;
}

const noPersistence = ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'];

function startProcess(bin: string, args: string[], dir?: string): ChildProcess {
  const p = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr?.resume();
  return p;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen in ${ms} ms${last ? `: ${(last as Error).message}` : ''}`);
}

/** One short-lived command against 127.0.0.1:port. */
export async function ask(port: number, args: string[], o: RedisOptions = {}): Promise<unknown> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, ...o });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await c.call(args[0], ...args.slice(1));
  } finally {
    c.disconnect();
  }
}

/** A private redis-server on `port` (restart tests), without persistence. */
export async function startRedisServer(port: number): Promise<ChildProcess> {
  return (await redisServer(undefined, [], port)).proc;
}

async function redisServer(dir: string | undefined, extra: string[] = [], port?: number): Promise<RedisNode> {
  const p = port ?? (await freePort());
  const proc = startProcess(
    'redis-server',
    ['--port', String(p), ...(dir ? ['--dir', dir] : []), ...noPersistence, ...extra],
    dir,
  );
  await until(`redis-server on ${p}`, async () => ((await ask(p, ['PING'])) === 'PONG' ? true : undefined));
  return { port: p, proc, kill: () => stopProcess(proc) };
}

export interface SentinelGroup {
  name: string;
  primary: RedisNode;
  replica: RedisNode;
  sentinels: RedisNode[];
  /** `host:port,…` of the sentinels (REDIS_SENTINELS). */
  sentinelList: string;
  /** The port the sentinels currently name as primary. */
  currentPrimary(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A primary, one replica and three sentinels (quorum 2) with short timings: the primary is judged
 * down after 1 s, a failover takes a few seconds. Resolves once the sentinels know the replica and
 * each other (so a failover can happen at once).
 */
export async function startSentinelGroup(name = 'xcai'): Promise<SentinelGroup> {
  const dir = mkdtempSync(join(tmpdir(), 'xcai-sentinel-'));
  const nodes: RedisNode[] = [];
  try {
    const primary = await redisServer(dir);
    nodes.push(primary);
    const replica = await redisServer(dir, ['--replicaof', '127.0.0.1', String(primary.port)]);
    nodes.push(replica);
    await until('replica in sync', async () =>
      /master_link_status:up/.test(String(await ask(replica.port, ['INFO', 'replication'])))
        ? true
        : undefined,
    );
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 4000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const proc = startProcess('redis-sentinel', [conf], dir);
      const node = { port, proc, kill: () => stopProcess(proc) };
      nodes.push(node);
      sentinels.push(node);
      await until(`sentinel on ${port}`, async () =>
        (await ask(port, ['PING'])) === 'PONG' ? true : undefined,
      );
    }
    for (const s of sentinels) {
      await until('sentinels see the replica and each other', async () => {
        const replicas = (await ask(s.port, ['SENTINEL', 'REPLICAS', name])) as unknown[];
        const others = (await ask(s.port, ['SENTINEL', 'SENTINELS', name])) as unknown[];
        return replicas.length === 1 && others.length === 2 ? true : undefined;
      });
    }
    const group: SentinelGroup = {
      name,
      primary,
      replica,
      sentinels,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      currentPrimary: async () => {
        const [, port] = (await ask(sentinels[0].port, [
          'SENTINEL',
          'GET-MASTER-ADDR-BY-NAME',
          name,
        ])) as string[];
        return Number(port);
      },
      stop: async () => {
        for (const n of nodes) await n.kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return group;
  } catch (e) {
    for (const n of nodes) await n.kill();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export interface RedisCluster {
  masters: RedisNode[];
  /** `host:port,…` (REDIS_CLUSTER_NODES). */
  nodeList: string;
  stop(): Promise<void>;
}

/** Three masters (no replicas), slots spread by `redis-cli --cluster create`. */
export async function startCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'xcai-cluster-'));
  const masters: RedisNode[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const bus = await freePort();
      masters.push(
        await redisServer(
          dir,
          [
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            String(bus),
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '2000',
          ],
          port,
        ),
      );
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...masters.map((m) => `127.0.0.1:${m.port}`),
      '--cluster-yes',
    ]);
    for (const m of masters) {
      await until('cluster_state:ok', async () =>
        /cluster_state:ok/.test(String(await ask(m.port, ['CLUSTER', 'INFO']))) ? true : undefined,
      );
    }
    return {
      masters,
      nodeList: masters.map((m) => `127.0.0.1:${m.port}`).join(','),
      stop: async () => {
        for (const m of masters) await m.kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const m of masters) await m.kill();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export interface TlsRedis {
  port: number;
  stop(): Promise<void>;
}

/**
 * redis-server listening only on TLS (`--port 0`), presenting `cert`/`key`, with the default user
 * switched off and one ACL user `user` / `password` limited to keys under `keys` (a glob).
 */
export async function startTlsRedis(o: {
  cert: string;
  key: string;
  ca: string;
  user: string;
  password: string;
  keys: string;
}): Promise<TlsRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'xcai-redis-tls-'));
  const port = await freePort();
  const proc = startProcess(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--tls-cert-file',
      o.cert,
      '--tls-key-file',
      o.key,
      '--tls-ca-cert-file',
      o.ca,
      '--tls-auth-clients',
      'optional',
      '--dir',
      dir,
      ...noPersistence,
      // redis-server joins the words after --user into one ACL rule line.
      '--user',
      'default',
      'off',
      '--user',
      o.user,
      'on',
      `>${o.password}`,
      `~${o.keys}`,
      '+@all',
    ],
    dir,
  );
  await until(`TLS redis-server on ${port}`, async () =>
    (await ask(port, ['PING'], {
      tls: { ca: readFileSync(o.ca), rejectUnauthorized: true },
      username: o.user,
      password: o.password,
    }).then(
      (r) => r,
      () => undefined,
    )) === 'PONG'
      ? true
      : undefined,
  );
  return {
    port,
    stop: async () => {
      await stopProcess(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
