/**
 * The two states a Redis failover can leave behind, made deterministic (the Sentinel test meets
 * them only by chance): two initiating-gateway replicas share a private redis-server, and every
 * async answer lands on the replica that does not hold the request.
 *  - an orphaned claim (`claim:` says answered, the request still waits): the answer is handed over
 *    anyway and completes the request, instead of being dropped as a duplicate;
 *  - after a reconnect, an answer whose pending record has not been written again yet is deferred
 *    (503, the sender redelivers) instead of refused (400), and completes once the record is back.
 */
import type { ChildProcess } from 'node:child_process';
import {
  Action,
  asyncKeys,
  decodeAdhocQueryResponse,
  encodeFindDocumentsRequest,
  type RunningGateway,
  type ServiceSettings,
} from '@xcai/shared';
import type Redis from 'ioredis';
import { soapCall } from '../support/client';
import { directory, startIG, testSettings } from '../support/federation';
import { startAsyncPeer, type AsyncPeer } from '../support/async-peer';
import { freePort, inspector, stopProcess, uniquePrefix } from '../support/redis';
import { startRedisServer } from '../support/redis-ha';

const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.501';
const HOME_X = 'urn:oid:1.3.6.1.4.1.21367.13.70.502';
const prefix = uniquePrefix('failover-paths');
let port: number;
let server: ChildProcess;
let peer: AsyncPeer;
let owner: RunningGateway, lander: RunningGateway;
let redis: Redis;

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  port = await freePort();
  server = await startRedisServer(port);
  peer = await startAsyncPeer(HOME_X, 'hold');
  const settings = (extra: Partial<ServiceSettings> = {}): ServiceSettings => ({
    ...testSettings,
    redis: `redis://127.0.0.1:${port}`,
    redisKeyPrefix: prefix,
    handoverSecret: 'failover-paths-secret-0123456789abcdef',
    ...extra,
  });
  const dir = () =>
    directory({
      homeCommunityId: HOME_A,
      name: 'A',
      deadlineMs: 20_000,
      communities: [
        {
          homeCommunityId: HOME_X,
          name: 'X',
          async: true,
          endpoints: { iti38: { url: peer.url, timeoutMs: 15_000 } },
        },
      ],
    });
  lander = await startIG(dir(), { settings: settings() });
  owner = await startIG(dir(), { settings: settings({ publicUrl: lander.url }) });
  redis = inspector(`redis://127.0.0.1:${port}`);
}, 60_000);

afterAll(async () => {
  redis?.disconnect();
  await owner?.close();
  await lander?.close();
  await peer?.close();
  if (server) await stopProcess(server);
});

const query = () =>
  soapCall(`${owner.url}/iti18`, Action.ITI18, encodeFindDocumentsRequest('P1^^^&1.2.3&ISO'));

function objectsOf(a: Awaited<ReturnType<typeof query>>): [string, string[]] {
  const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
  return [res.status, res.objects.map((o) => o.attr('home') as string)];
}

it('hands over an answer whose claim was orphaned while its request still waits', async () => {
  const held = query();
  await peer.waitHeld(1);
  const uuid = peer.held[0].messageId.slice('urn:uuid:'.length);
  // What a claim applied by the old primary, whose reply was lost, leaves behind.
  await redis.set(`${prefix}${asyncKeys.claim(uuid)}`, 'answered', 'PX', 60_000);
  expect(await peer.held[0].deliver()).toBe(202);
  expect(objectsOf(await held)).toEqual(['Success', [HOME_X]]);
});

it('defers (503) an answer whose pending record is not back yet after a reconnect, then completes', async () => {
  const held = query();
  await peer.waitHeld(2);
  const uuid = peer.held[1].messageId.slice('urn:uuid:'.length);
  const key = `${prefix}${asyncKeys.pending(uuid)}`;
  await stopProcess(server);
  server = await startRedisServer(port);
  // The owner writes its record again on reconnect; both replicas are connected again.
  await waitFor(async () => (await redis.get(key).catch(() => null)) !== null);
  await waitFor(async () => (await lander.readiness.report()).checks.async?.detail?.available === true);
  const record = (await redis.get(key)) as string;
  await redis.del(key); // as if the owner had not rewritten it yet
  expect(await peer.held[1].deliver()).toBe(503);
  await redis.set(key, record, 'PX', 60_000);
  expect(await peer.held[1].deliver()).toBe(202);
  expect(objectsOf(await held)).toEqual(['Success', [HOME_X]]);
});
