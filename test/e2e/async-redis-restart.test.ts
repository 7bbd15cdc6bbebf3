/**
 * Redis trouble: a private redis-server (no persistence) is stopped in the middle of an async
 * fan-out and started again. While it is away synchronous traffic goes on, new async requests are
 * refused with a clear fault, nothing crashes; once it is back the pending state is restored, the
 * held fan-out completes and async service resumes.
 */
import type { ChildProcess } from 'node:child_process';
import {
  asyncKeys,
  Action,
  decodeAdhocQueryResponse,
  type RunningGateway,
  type ServiceSettings,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import type Redis from 'ioredis';
import { soapCall } from '../support/client';
import { directory, startIG } from '../support/federation';
import {
  startAsyncPeer,
  startReplyReceiver,
  type AsyncPeer,
  type ReplyReceiver,
} from '../support/async-peer';
import { freePort, inspector, keysUnder, stopProcess, uniquePrefix } from '../support/redis';
import { startRedisServer } from '../support/redis-ha';

const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.401';
const HOME_X = 'urn:oid:1.3.6.1.4.1.21367.13.70.402';
const prefix = uniquePrefix('async-restart');

let port: number;
let server: ChildProcess;
let peer: AsyncPeer;
let receiver: ReplyReceiver;
let ig: RunningGateway;
let redis: Redis;

function query() {
  return encodeFindDocumentsRequest('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO');
}

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
  receiver = await startReplyReceiver();
  const settings: ServiceSettings = {
    directoryFile: '(inline)',
    host: '127.0.0.1',
    port: 0,
    mgmtPort: -1,
    audit: { transport: 'none' },
    maxRequestBytes: 4 * 1024 * 1024,
    redis: `redis://127.0.0.1:${port}`,
    redisUnreadyAfterMs: 4_000,
    redisKeyPrefix: prefix,
  };
  ig = await startIG(
    directory({
      homeCommunityId: HOME_A,
      name: 'A',
      deadlineMs: 30_000,
      communities: [
        {
          homeCommunityId: HOME_X,
          name: 'X',
          async: true,
          endpoints: { iti38: { url: peer.url, timeoutMs: 30_000 } },
        },
      ],
      consumers: [{ name: 'PACS', replyTo: ['http://127.0.0.1:*'] }],
    }),
    { settings },
  );
  redis = inspector(`redis://127.0.0.1:${port}`);
}, 30_000);

afterAll(async () => {
  redis.disconnect();
  await ig.close();
  await peer.close();
  await receiver.close();
  await stopProcess(server);
});

it('survives a Redis restart in the middle of an async fan-out', async () => {
  const held = soapCall(`${ig.url}/iti18`, Action.ITI18, query());
  await peer.waitHeld(1);
  const uuid = peer.held[0].messageId.slice('urn:uuid:'.length);
  expect(await redis.get(`${prefix}${asyncKeys.pending(uuid)}`)).not.toBeNull();

  await stopProcess(server);
  await waitFor(async () => !(await ig.readiness.report()).checks.async?.detail?.available);

  // Redis away: a synchronous request still works (the async community is asked synchronously),
  peer.mode = 'deliver';
  const sync = await soapCall(`${ig.url}/iti18`, Action.ITI18, query());
  expect(sync.status).toBe(200);
  expect(decodeAdhocQueryResponse(sync.envelope.doc, sync.envelope.payload).status).toBe('Success');
  // a new asynchronous request is refused with a clear fault,
  const refused = await soapCall(`${ig.url}/iti18`, Action.ITI18, query(), {
    replyTo: `${receiver.url}/reply`,
  });
  expect(refused.status).toBe(500);
  expect(refused.xml).toContain('EndpointUnavailable');
  expect(refused.xml).toContain('correlation store');
  // and readiness says degraded, not unready.
  const report = await ig.readiness.report();
  expect([report.ready, report.checks.async.status]).toEqual([true, 'degraded']);
  // Away for longer than redisUnreadyAfterMs: unready (the Service takes the replica out).
  await waitFor(async () => !(await ig.readiness.report()).ready);
  expect((await ig.readiness.report()).checks.async.status).toBe('unready');

  server = await startRedisServer(port);
  await waitFor(
    async () => (await redis.get(`${prefix}${asyncKeys.pending(uuid)}`).catch(() => null)) !== null,
  );

  await waitFor(async () => (await ig.readiness.report()).ready);
  // The held request completes with the response that arrives after the restart.
  expect(await peer.held[0].deliver()).toBe(202);
  const a = await held;
  const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
  expect([a.status, res.status, res.objects.map((o) => o.attr('home'))]).toEqual([200, 'Success', [HOME_X]]);

  // Async service is back: served async, and used async again (not the synchronous fallback).
  peer.mode = 'hold';
  const served = await soapCall(`${ig.url}/iti18`, Action.ITI18, query(), {
    replyTo: `${receiver.url}/reply`,
  });
  expect(served.status).toBe(202);
  await peer.waitHeld(2);
  expect(await peer.held[1].deliver()).toBe(202);
  const m = await receiver.next(served.messageId);
  expect(decodeAdhocQueryResponse(m.envelope.doc, m.envelope.payload).status).toBe('Success');

  // Every key carries a TTL.
  for (const [k, ttl] of await keysUnder(redis, prefix)) expect([k, ttl > 0]).toEqual([k, true]);
}, 60_000);
