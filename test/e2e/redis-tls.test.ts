/**
 * TLS and ACL to Redis with a real redis-server listening only on TLS, the default user off and
 * one ACL user: the gateway connects with rediss:// (CA from a file, password from a file) and the
 * async exchange runs through it; a wrong CA, a wrong server name and a wrong password are refused
 * with a clear reason, and TLS material with a plaintext URL is a startup error (never plaintext).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import {
  Action,
  closeRedis,
  connectRedis,
  createLogger,
  decodeAdhocQueryResponse,
  encodeFindDocumentsRequest,
  redisSettingsFromEnv,
  whenReady,
  type RunningGateway,
} from '@xcai/shared';
import { soapCall } from '../support/client';
import { makePki, type TestPki } from '../support/certs';
import { directory, startIG, testSettings } from '../support/federation';
import { startAsyncPeer, type AsyncPeer } from '../support/async-peer';
import { uniquePrefix } from '../support/redis';
import { startTlsRedis, type TlsRedis } from '../support/redis-ha';

const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.1';
const HOME_B = 'urn:oid:1.3.6.1.4.1.21367.13.70.2';
const prefix = uniquePrefix('tls');
const USER = 'xcai-gw';
const PASSWORD = randomBytes(18).toString('base64url');
let pki: TestPki, wrong: TestPki;
let server: TlsRedis;
let work: string;
let passwordFile: string;
let peer: AsyncPeer;
let ig: RunningGateway;

beforeAll(async () => {
  pki = makePki(['redis'], 'redis-tls');
  wrong = makePki(['redis'], 'redis-wrong');
  work = mkdtempSync(join(tmpdir(), 'xcai-redis-tls-test-'));
  passwordFile = join(work, 'password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  server = await startTlsRedis({
    cert: pki.cert('redis'),
    key: pki.key('redis'),
    ca: pki.ca,
    user: USER,
    password: PASSWORD,
    keys: 'xcai-test:*',
  });
  peer = await startAsyncPeer(HOME_B, 'deliver');
}, 60_000);

afterAll(async () => {
  await ig?.close();
  await peer?.close();
  await server?.stop();
  pki?.remove();
  wrong?.remove();
  if (work) rmSync(work, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  REDIS_URL: `rediss://127.0.0.1:${server.port}`,
  REDIS_TLS_CA_FILE: pki.ca,
  REDIS_USERNAME: USER,
  REDIS_PASSWORD_FILE: passwordFile,
  ...extra,
});

/** Connects with these settings and returns whether it got ready and what it logged. */
async function attempt(e: Record<string, string>): Promise<{ ready: boolean; logs: string[] }> {
  const logs: string[] = [];
  const client = connectRedis(redisSettingsFromEnv(e)!, {
    keyPrefix: prefix,
    log: createLogger({}, 'info', (l) => logs.push(l)),
  });
  const ready = await whenReady(client, 3_000);
  await closeRedis(client);
  return { ready, logs };
}

it('runs the async exchange over rediss:// as an ACL user, password from a file', async () => {
  ig = await startIG(
    directory({
      homeCommunityId: HOME_A,
      name: 'A',
      deadlineMs: 8_000,
      communities: [
        {
          homeCommunityId: HOME_B,
          name: 'B',
          async: true,
          endpoints: { iti38: { url: peer.url, timeoutMs: 5_000 } },
        },
      ],
    }),
    {
      settings: {
        ...testSettings,
        redis: redisSettingsFromEnv(env()),
        redisKeyPrefix: prefix,
        handoverSecret: 'tls-test-secret-0123456789abcdef',
      },
    },
  );
  const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, encodeFindDocumentsRequest('P1^^^&1.2.3&ISO'));
  const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
  expect([a.status, res.status, res.objects.length]).toEqual([200, 'Success', 1]);
  // It went asynchronously (not the synchronous fallback): the peer was given our ReplyTo.
  expect(peer.received.some((x) => x.includes('/async-response'))).toBe(true);
  const look = new IORedis({
    host: '127.0.0.1',
    port: server.port,
    tls: { ca: readFileSync(pki.ca) },
    username: USER,
    password: PASSWORD,
  });
  try {
    const [, keys] = await look.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 1000);
    expect(keys.some((k) => k.startsWith(`${prefix}claim:{`))).toBe(true);
  } finally {
    look.disconnect();
  }
});

it('refuses a server whose certificate does not chain to the configured CA', async () => {
  const r = await attempt(env({ REDIS_TLS_CA_FILE: wrong.ca }));
  expect(r.ready).toBe(false);
  expect(r.logs.join('\n')).toMatch(
    /redis unavailable.*(self[- ]signed|unable to (get|verify)|certificate)/i,
  );
});

it('checks the server name', async () => {
  const r = await attempt(env({ REDIS_TLS_SERVERNAME: 'not-redis.example' }));
  expect(r.ready).toBe(false);
  expect(r.logs.join('\n')).toMatch(/does not match certificate|altnames/i);
});

it('refuses a wrong password (ACL), without logging it', async () => {
  const r = await attempt(env({ REDIS_PASSWORD_FILE: '', REDIS_PASSWORD: 'not-the-password' }));
  expect(r.ready).toBe(false);
  expect(r.logs.join('\n')).toMatch(/WRONGPASS|invalid username-password/);
  expect(r.logs.join('\n')).not.toContain('not-the-password');
});

it('never falls back to plaintext when TLS material is given', () => {
  expect(() => redisSettingsFromEnv(env({ REDIS_URL: `redis://127.0.0.1:${server.port}` }))).toThrow(
    /REDIS_TLS_CA_FILE set but Redis TLS is off/,
  );
});
