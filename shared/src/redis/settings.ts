/**
 * Where the shared Redis is and how to reach it, from the environment (see async/README.md,
 * "Settings"). Exactly one of REDIS_URL, REDIS_SENTINELS (+ REDIS_SENTINEL_NAME) or
 * REDIS_CLUSTER_NODES. Nonsense is a startup error that never echoes a password.
 */
import { readFileSync } from 'node:fs';

export interface HostPort {
  host: string;
  port: number;
}

export interface RedisTlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

interface Common {
  username?: string;
  password?: string;
  tls?: RedisTlsSettings;
}

export type RedisSettings =
  | (Common & { mode: 'single'; host: string; port: number; db?: number })
  | (Common & {
      mode: 'sentinel';
      sentinels: HostPort[];
      name: string;
      db?: number;
      sentinelUsername?: string;
      sentinelPassword?: string;
    })
  | (Common & { mode: 'cluster'; nodes: HostPort[] });

export class RedisSettingsError extends Error {}

const URL_FORMS =
  'REDIS_URL must be redis[s]://[user:password@]host:port[/db], redis[s]+sentinel://host:port,host:port/<name> ' +
  'or redis[s]+cluster://host:port,host:port';

const URL_RE = /^(rediss?)(\+sentinel|\+cluster)?:\/\/(?:([^@/?#]*)@)?([^/?#]+)(\/[^?#]*)?$/;

/** A URL alone (no environment): the form tests and `connectRedis(url)` use. */
export function redisSettingsFromUrl(url: string): RedisSettings {
  return redisSettingsFromEnv({ REDIS_URL: url }) as RedisSettings;
}

export function redisSettingsFromEnv(env: NodeJS.ProcessEnv): RedisSettings | undefined {
  const url = env.REDIS_URL || undefined;
  const sentinels = env.REDIS_SENTINELS || undefined;
  const cluster = env.REDIS_CLUSTER_NODES || undefined;
  const given = [url && 'REDIS_URL', sentinels && 'REDIS_SENTINELS', cluster && 'REDIS_CLUSTER_NODES'].filter(
    Boolean,
  );
  if (given.length > 1) throw new RedisSettingsError(`set only one of ${given.join(', ')}`);
  if (env.REDIS_SENTINEL_NAME && !sentinels && !url?.includes('+sentinel:'))
    throw new RedisSettingsError('REDIS_SENTINEL_NAME is set but REDIS_SENTINELS is not');
  if (given.length === 0) {
    const stray = Object.keys(env).filter((k) => /^REDIS_(TLS_|PASSWORD|USERNAME)/.test(k) && env[k]);
    if (stray.length) throw new RedisSettingsError(`${stray.join(', ')} set but no Redis is configured`);
    return undefined;
  }

  let tlsOn = envBool(env, 'REDIS_TLS');
  let urlUser: string | undefined;
  let urlPassword: string | undefined;
  let s: RedisSettings;
  if (url) {
    const m = URL_RE.exec(url);
    if (!m) throw new RedisSettingsError(URL_FORMS);
    const [, scheme, kind, userinfo, hosts, path = ''] = m;
    if (tlsOn !== undefined)
      throw new RedisSettingsError('REDIS_TLS does not go with REDIS_URL (use rediss://)');
    tlsOn = scheme === 'rediss';
    if (userinfo !== undefined) {
      const i = userinfo.indexOf(':');
      try {
        urlUser = decodeURIComponent(i < 0 ? userinfo : userinfo.slice(0, i)) || undefined;
        urlPassword = i < 0 ? undefined : decodeURIComponent(userinfo.slice(i + 1)) || undefined;
      } catch {
        throw new RedisSettingsError('REDIS_URL: the user or password is not valid percent-encoding');
      }
    }
    if (kind === '+sentinel') {
      const name = decodeURIComponent(path.replace(/^\//, ''));
      if (!/^[A-Za-z0-9._-]+$/.test(name))
        throw new RedisSettingsError('REDIS_URL: redis+sentinel:// needs the master name as its path');
      if (env.REDIS_SENTINEL_NAME && env.REDIS_SENTINEL_NAME !== name)
        throw new RedisSettingsError('REDIS_SENTINEL_NAME differs from the name in REDIS_URL');
      s = { mode: 'sentinel', sentinels: hostList('REDIS_URL', hosts, 26379), name };
    } else if (kind === '+cluster') {
      if (path !== '' && path !== '/')
        throw new RedisSettingsError(
          'REDIS_URL: redis+cluster:// takes no path (a cluster has one database)',
        );
      s = { mode: 'cluster', nodes: hostList('REDIS_URL', hosts, 6379) };
    } else {
      const list = hostList('REDIS_URL', hosts, 6379);
      if (list.length !== 1)
        throw new RedisSettingsError('REDIS_URL: several hosts need redis+sentinel:// or redis+cluster://');
      s = { mode: 'single', ...list[0], db: dbNumber(path) };
    }
  } else if (sentinels) {
    const name = env.REDIS_SENTINEL_NAME;
    if (!name || !/^[A-Za-z0-9._-]+$/.test(name))
      throw new RedisSettingsError('REDIS_SENTINELS needs REDIS_SENTINEL_NAME (the monitored master name)');
    s = { mode: 'sentinel', sentinels: hostList('REDIS_SENTINELS', sentinels, 26379), name };
  } else {
    s = { mode: 'cluster', nodes: hostList('REDIS_CLUSTER_NODES', cluster as string, 6379) };
  }

  const username = env.REDIS_USERNAME || undefined;
  const password = secret(env, 'REDIS_PASSWORD');
  if ((username && urlUser) || (password && urlPassword))
    throw new RedisSettingsError(
      'give the Redis user/password either in REDIS_URL or in REDIS_USERNAME/REDIS_PASSWORD',
    );
  s.username = username ?? urlUser;
  s.password = password ?? urlPassword;
  if (s.username && !s.password)
    throw new RedisSettingsError('REDIS_USERNAME needs REDIS_PASSWORD or REDIS_PASSWORD_FILE');

  if (s.mode === 'sentinel') {
    s.sentinelUsername = env.REDIS_SENTINEL_USERNAME || undefined;
    s.sentinelPassword = secret(env, 'REDIS_SENTINEL_PASSWORD');
  } else if (env.REDIS_SENTINEL_USERNAME || env.REDIS_SENTINEL_PASSWORD || env.REDIS_SENTINEL_PASSWORD_FILE) {
    throw new RedisSettingsError('REDIS_SENTINEL_USERNAME/PASSWORD are for Sentinel only');
  }

  const files = ['REDIS_TLS_CA_FILE', 'REDIS_TLS_CERT_FILE', 'REDIS_TLS_KEY_FILE', 'REDIS_TLS_SERVERNAME'];
  if (!tlsOn) {
    const set = files.filter((k) => env[k]);
    // Never fall back to plaintext when TLS material is given.
    if (set.length)
      throw new RedisSettingsError(
        `${set.join(', ')} set but Redis TLS is off (use rediss:// or REDIS_TLS=true)`,
      );
  } else {
    const cert = readFile(env, 'REDIS_TLS_CERT_FILE');
    const key = readFile(env, 'REDIS_TLS_KEY_FILE');
    if (!cert !== !key)
      throw new RedisSettingsError(
        'REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together (client certificate)',
      );
    s.tls = {
      ca: readFile(env, 'REDIS_TLS_CA_FILE'),
      cert,
      key,
      servername: env.REDIS_TLS_SERVERNAME || undefined,
    };
  }
  return s;
}

function envBool(env: NodeJS.ProcessEnv, k: string): boolean | undefined {
  const v = env[k];
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new RedisSettingsError(`${k} must be true or false`);
}

function hostList(k: string, v: string, defaultPort: number): HostPort[] {
  const out = v.split(',').map((part) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(part.trim());
    const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
    if (!m || port < 1 || port > 65535)
      throw new RedisSettingsError(`${k}: "${part.trim()}" is not host:port`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port };
  });
  return out;
}

function dbNumber(path: string): number | undefined {
  const p = path.replace(/^\//, '');
  if (p === '') return undefined;
  if (!/^\d{1,2}$/.test(p)) throw new RedisSettingsError('REDIS_URL: the path must be a database number');
  return Number(p);
}

function secret(env: NodeJS.ProcessEnv, k: string): string | undefined {
  const direct = env[k] || undefined;
  const file = env[`${k}_FILE`] || undefined;
  if (direct && file) throw new RedisSettingsError(`set ${k} or ${k}_FILE, not both`);
  if (!file) return direct;
  const v = readFile(env, `${k}_FILE`)
    ?.toString('utf8')
    .replace(/\r?\n$/, '');
  if (!v) throw new RedisSettingsError(`${k}_FILE is empty`);
  return v;
}

function readFile(env: NodeJS.ProcessEnv, k: string): Buffer | undefined {
  const path = env[k];
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new RedisSettingsError(
      `${k}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}
