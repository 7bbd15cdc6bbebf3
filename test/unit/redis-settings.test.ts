/** How the Redis settings are read from the environment, and what is refused at startup. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeRedis, redisSettingsFromEnv } from '@xcai/shared';
import { settingsFromEnv } from '@xcai/shared/src/service/settings';

let dir: string;
let pw: string, ca: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xcai-redis-settings-'));
  pw = join(dir, 'pw');
  ca = join(dir, 'ca.pem');
  writeFileSync(pw, 's3cret-from-file\n');
  writeFileSync(ca, 'not really a CA, only read');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('accepted forms', () => {
  it('a single node, with user, password and database in the URL', () => {
    expect(redisSettingsFromEnv({ REDIS_URL: 'redis://gw:p%40ss@redis.example:6380/2' })).toEqual({
      mode: 'single',
      host: 'redis.example',
      port: 6380,
      db: 2,
      username: 'gw',
      password: 'p@ss',
    });
  });

  it('Sentinel by URL or by REDIS_SENTINELS, with sentinel auth', () => {
    const byUrl = redisSettingsFromEnv({ REDIS_URL: 'redis+sentinel://s1:26379,s2,[::1]:26380/mymaster' });
    expect(byUrl).toMatchObject({
      mode: 'sentinel',
      name: 'mymaster',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
    });
    expect(
      redisSettingsFromEnv({
        REDIS_SENTINELS: 's1:5000,s2:5001',
        REDIS_SENTINEL_NAME: 'xcai',
        REDIS_PASSWORD_FILE: pw,
        REDIS_SENTINEL_PASSWORD: 'sp',
      }),
    ).toMatchObject({ mode: 'sentinel', name: 'xcai', password: 's3cret-from-file', sentinelPassword: 'sp' });
  });

  it('Cluster by REDIS_CLUSTER_NODES or redis+cluster://, TLS with a CA file', () => {
    expect(redisSettingsFromEnv({ REDIS_CLUSTER_NODES: 'c1:7000,c2:7001' })).toMatchObject({
      mode: 'cluster',
      nodes: [
        { host: 'c1', port: 7000 },
        { host: 'c2', port: 7001 },
      ],
    });
    const s = redisSettingsFromEnv({ REDIS_URL: 'rediss+cluster://c1:7000', REDIS_TLS_CA_FILE: ca });
    expect(s?.tls?.ca?.toString()).toBe('not really a CA, only read');
    expect(
      redisSettingsFromEnv({ REDIS_SENTINELS: 's1', REDIS_SENTINEL_NAME: 'm', REDIS_TLS: 'true' })?.tls,
    ).toEqual({});
  });

  it('no Redis at all', () => {
    expect(redisSettingsFromEnv({})).toBeUndefined();
  });

  it('describes the target without the password', () => {
    const s = redisSettingsFromEnv({ REDIS_URL: 'rediss://gw:hunter2@r:6379', REDIS_TLS_CA_FILE: ca })!;
    expect(describeRedis(s)).toBe('r:6379 (tls) as gw');
  });
});

describe('refused at startup, with a reason and never the password', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['an unknown scheme', { REDIS_URL: 'http://r:6379' }, /REDIS_URL must be/],
    [
      'a URL with a password that does not parse',
      { REDIS_URL: 'redis://u:hunter2@r:99999' },
      /not host:port/,
    ],
    ['two ways at once', { REDIS_URL: 'redis://r', REDIS_CLUSTER_NODES: 'c:1' }, /only one of/],
    ['sentinels without a name', { REDIS_SENTINELS: 's:1' }, /REDIS_SENTINEL_NAME/],
    ['a sentinel URL without a name', { REDIS_URL: 'redis+sentinel://s:1' }, /master name/],
    ['several hosts in a plain URL', { REDIS_URL: 'redis://a:1,b:2' }, /several hosts/],
    ['TLS material with plaintext', { REDIS_URL: 'redis://r', REDIS_TLS_CA_FILE: '/x' }, /TLS is off/],
    ['a missing CA file', { REDIS_URL: 'rediss://r', REDIS_TLS_CA_FILE: '/nonexistent/ca' }, /cannot read/],
    [
      'a certificate without its key',
      { REDIS_URL: 'rediss://r', REDIS_TLS_CERT_FILE: '/x' },
      /go together|cannot read/,
    ],
    [
      'password twice',
      { REDIS_URL: 'redis://r', REDIS_PASSWORD: 'a', REDIS_PASSWORD_FILE: '/x' },
      /not both/,
    ],
    ['a user without password', { REDIS_URL: 'redis://r', REDIS_USERNAME: 'gw' }, /needs REDIS_PASSWORD/],
    ['a password without Redis', { REDIS_PASSWORD: 'hunter2' }, /no Redis is configured/],
    ['REDIS_TLS with a URL', { REDIS_URL: 'redis://r', REDIS_TLS: 'true' }, /rediss:/],
    ['a bad database', { REDIS_URL: 'redis://r/x' }, /database number/],
  ];
  it.each(cases)('%s', (_, env, reason) => {
    let msg = '';
    try {
      redisSettingsFromEnv(env);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(reason);
    expect(msg).not.toContain('hunter2');
  });

  it('the service settings turn them into a SettingsError, and refuse braces in the key prefix', () => {
    const base = { XCAI_DIRECTORY: '/d.json', XCAI_AUDIT_TRANSPORT: 'none' };
    const d = { port: 8080, clientAuth: 'required' as const };
    expect(() => settingsFromEnv({ ...base, REDIS_URL: 'nope' }, d)).toThrow(/REDIS_URL must be/);
    expect(() => settingsFromEnv({ ...base, REDIS_URL: 'redis://r', XCAI_REDIS_PREFIX: '{x}:' }, d)).toThrow(
      /must not contain \{/,
    );
    expect(settingsFromEnv({ ...base, REDIS_CLUSTER_NODES: 'c:7000' }, d).redis).toMatchObject({
      mode: 'cluster',
    });
  });
});
