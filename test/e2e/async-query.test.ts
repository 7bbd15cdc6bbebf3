/**
 * Asynchronous web services (ITI TF-2 Appendix V) for the query transactions, against the real
 * Redis at REDIS_URL: ITI-18 served async at the initiating gateway, ITI-38 served async at the
 * responding gateway, ITI-38 used async from the initiating gateway, and the receiver's safety rules
 * (unknown RelatesTo, duplicates, late answers, deadline expiry, ReplyTo allow-list, hand-over auth).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import {
  asyncKeys,
  Action,
  decodeAdhocQueryResponse,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  newMessageId,
  type RunningGateway,
  type ServiceSettings,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import type Redis from 'ioredis';
import { soapCall } from '../support/client';
import {
  demoSeeds,
  directory,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { xsdErrors } from '../support/xsd';
import {
  peerObject,
  startAsyncPeer,
  startReplyReceiver,
  type AsyncPeer,
  type ReplyReceiver,
} from '../support/async-peer';
import { deleteUnder, inspector, keysUnder, REDIS_URL, uniquePrefix } from '../support/redis';
import { readManifest } from '../../services/reference-community/src/server';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HOME_X = 'urn:oid:1.3.6.1.4.1.21367.13.70.301';
const HOME_Y = 'urn:oid:1.3.6.1.4.1.21367.13.70.302';

const prefix = uniquePrefix('async-query');
const settings = (extra: Partial<ServiceSettings> = {}): ServiceSettings => ({
  directoryFile: '(inline)',
  host: '127.0.0.1',
  port: 0,
  mgmtPort: -1,
  audit: { transport: 'none' },
  maxRequestBytes: 4 * 1024 * 1024,
  redis: REDIS_URL,
  redisKeyPrefix: prefix,
  handoverSecret: 'test-secret-for-async-query',
  ...extra,
});

let homeA: string, homeB: string;
let refA: CommunityProcess, refB: CommunityProcess;
let rgB: RunningGateway, ig: RunningGateway;
let receiver: ReplyReceiver;
let redis: Redis;
const stop: (() => Promise<void>)[] = [];

function findDocuments(patient = PATIENT_1) {
  return encodeFindDocumentsRequest(patient);
}

function igDirectory(communities: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return directory({
    homeCommunityId: homeA,
    name: 'A',
    deadlineMs: 8000,
    local: { registry: { url: refA.registry } },
    communities,
    consumers: [{ name: 'PACS on loopback', replyTo: ['http://127.0.0.1:*'] }],
    ...extra,
  });
}

async function startIGWith(communities: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  const g = await startIG(igDirectory(communities, extra), { settings: settings() });
  stop.push(g.close);
  return g;
}

beforeAll(async () => {
  const seeds = await demoSeeds();
  homeA = readManifest(seeds.A).homeCommunityId;
  homeB = readManifest(seeds.B).homeCommunityId;
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  stop.push(refA.stop, refB.stop);
  rgB = await startRG(
    directory({
      homeCommunityId: homeB,
      name: 'B',
      local: { registry: { url: refB.registry } },
      communities: [
        {
          homeCommunityId: homeA,
          name: 'A',
          replyTo: ['http://127.0.0.1:*/async-response', 'http://127.0.0.1:*/reply'],
        },
      ],
    }),
    { settings: settings() },
  );
  stop.push(rgB.close);
  ig = await startIGWith([
    {
      homeCommunityId: homeB,
      name: 'B',
      async: true,
      endpoints: { iti38: { url: `${rgB.url}/iti38`, timeoutMs: 5000 } },
    },
  ]);
  receiver = await startReplyReceiver();
  stop.push(receiver.close);
  redis = inspector();
  stop.push(async () => {
    await deleteUnder(redis, prefix);
    redis.disconnect();
  });
}, 90_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s();
});

describe('served async', () => {
  it('ITI-18 at the initiating gateway: 202 at once, the response POSTed to ReplyTo', async () => {
    const replyTo = `${receiver.url}/reply/pacs`;
    const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments(), { replyTo });
    expect([a.status, a.xml]).toEqual([202, '']);
    const m = await receiver.next(a.messageId);
    expect(m.path).toBe('/reply/pacs');
    expect(m.envelope.wsa.action).toBe(Action.ITI18Response);
    expect(m.envelope.wsa.relatesTo).toBe(a.messageId);
    expect(m.envelope.wsa.to).toBe(replyTo);
    expect(m.envelope.wsa.messageId).toMatch(/^urn:uuid:/);
    expect(m.envelope.wsa.messageId).not.toBe(a.messageId);
    expect(xsdErrors([m.xml])).toBe('');
    const res = decodeAdhocQueryResponse(m.envelope.doc, m.envelope.payload);
    expect(res.status).toBe('Success');
    const homes = new Set(res.objects.map((o) => o.attr('home')));
    expect(homes).toEqual(new Set([homeA, homeB])); // B was asked asynchronously too (used async)
  });

  it('ITI-38 at the responding gateway: 202 at once, the response POSTed to ReplyTo', async () => {
    const replyTo = `${receiver.url}/reply`;
    const a = await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments(), { replyTo });
    expect([a.status, a.xml]).toEqual([202, '']);
    const m = await receiver.next(a.messageId);
    expect(m.envelope.wsa.action).toBe(Action.ITI38Response);
    expect(m.envelope.wsa.to).toBe(replyTo);
    expect(xsdErrors([m.xml])).toBe('');
    const res = decodeAdhocQueryResponse(m.envelope.doc, m.envelope.payload);
    expect(res.status).toBe('Success');
    expect(res.objects.length).toBeGreaterThan(0);
    expect(res.objects.every((o) => o.attr('home') === homeB)).toBe(true);
  });

  it('a synchronous request still gets its answer on the connection', async () => {
    const a = await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments());
    expect(a.status).toBe(200);
    expect(a.envelope.wsa.relatesTo).toBe(a.messageId);
  });

  it('a repeated MessageID is acknowledged but served once', async () => {
    const messageId = newMessageId();
    const replyTo = `${receiver.url}/reply`;
    const before = receiver.count();
    const a = await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments(), { replyTo, messageId });
    const b = await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments(), { replyTo, messageId });
    expect([a.status, b.status]).toEqual([202, 202]);
    await receiver.next(messageId);
    // A later request's delivery proves the duplicate had its chance to be sent (and was not).
    const c = await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments(), { replyTo });
    await receiver.next(c.messageId);
    expect(receiver.count() - before).toBe(2);
  });

  it.each([
    ['another host', 'http://evil.example/reply'],
    ['credentials trick', 'http://127.0.0.1:8080@evil.example/reply'],
    ['host suffix trick', 'http://127.0.0.1.evil.example/reply'],
    ['unicode dot', 'http://127.0.0.1\u3002evil.example/reply'],
    ['other scheme', 'ftp://127.0.0.1/reply'],
    ['none', 'http://www.w3.org/2005/08/addressing/none'],
  ])('refuses a ReplyTo the directory does not allow (%s)', async (_why, replyTo) => {
    const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments(), { replyTo });
    expect(a.status).toBe(400);
    expect(a.xml).toContain('InvalidAddressingHeader');
    expect(a.xml).toContain('ReplyTo');
  });

  it('refuses a FaultTo the directory does not allow', async () => {
    const raw = encodeEnvelope({
      action: Action.ITI18,
      messageId: newMessageId(),
      replyTo: `${receiver.url}/reply`,
      faultTo: 'http://evil.example/faults',
      body: findDocuments(),
      request: true,
    });
    const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, '', { raw });
    expect(a.status).toBe(400);
    expect(a.xml).toContain('FaultTo');
  });

  it('the responding side allows only the ReplyTo prefixes of the calling community', async () => {
    const a = await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments(), {
      replyTo: `${receiver.url}/elsewhere`,
    });
    expect(a.status).toBe(400);
  });
});

describe('used async (ITI-38 from the initiating gateway)', () => {
  it('completes a synchronous ITI-18 whose community is asked asynchronously, and leaves no pending key', async () => {
    const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments());
    expect(a.status).toBe(200);
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.status).toBe('Success');
    expect(new Set(res.objects.map((o) => o.attr('home')))).toEqual(new Set([homeA, homeB]));
    const keys = await keysUnder(redis, prefix);
    expect([...keys.keys()].filter((k) => k.includes(':pending:'))).toEqual([]);
    for (const [k, ttl] of keys) expect([k, ttl > 0]).toEqual([k, true]); // every key has a TTL
    expect([...keys.keys()].some((k) => k.includes(':claim:'))).toBe(true);
  });

  it('gives PartialSuccess naming a community whose async response does not come before its timeout', async () => {
    const silent = await startAsyncPeer(HOME_X, 'silent');
    stop.push(silent.close);
    const g = await startIGWith([
      { homeCommunityId: homeB, name: 'B', async: true, endpoints: { iti38: `${rgB.url}/iti38` } },
      {
        homeCommunityId: HOME_X,
        name: 'X',
        async: true,
        endpoints: { iti38: { url: silent.url, timeoutMs: 700 } },
      },
    ]);
    const a = await soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments());
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.status).toBe('PartialSuccess');
    expect(res.errors.map((e) => [e.errorCode, e.location])).toEqual([['XDSUnavailableCommunity', HOME_X]]);
    expect(new Set(res.objects.map((o) => o.attr('home')))).toEqual(new Set([homeA, homeB]));
    // The request sent to X is no longer pending; its late answer is acknowledged and dropped.
    const sent = silent.received[0];
    const id = /<wsa:MessageID>([^<]+)</.exec(sent)?.[1] as string;
    const uuid = id.slice('urn:uuid:'.length);
    await waitFor(async () => (await redis.get(`${prefix}${asyncKeys.pending(uuid)}`)) === null);
    expect(await redis.get(`${prefix}${asyncKeys.claim(uuid)}`)).toBe('expired');
    const late = await postResponse(`${g.url}/async-response`, id, HOME_X);
    expect(late.status).toBe(202);
  });

  it('treats a duplicate async response idempotently', async () => {
    const dup = await startAsyncPeer(HOME_Y, 'duplicate', 2);
    stop.push(dup.close);
    const g = await startIGWith([
      { homeCommunityId: HOME_Y, name: 'Y', async: true, endpoints: { iti38: dup.url } },
    ]);
    const a = await soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments());
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.status).toBe('Success');
    expect(res.objects.filter((o) => o.attr('home') === HOME_Y)).toHaveLength(2);
    await waitFor(async () => dup.deliveries.length === 2);
    expect(dup.deliveries).toEqual([202, 202]);
  });

  it('rejects a response whose RelatesTo matches no pending request', async () => {
    const r = await postResponse(`${ig.url}/async-response`, newMessageId(), homeB);
    expect(r.status).toBe(400);
    expect(r.text).toContain('no pending request');
    const noRel = await postResponse(`${ig.url}/async-response`, undefined, homeB);
    expect(noRel.status).toBe(400);
    const notOurs = await postResponse(`${ig.url}/async-response`, 'urn:example:not-a-uuid', homeB);
    expect(notOurs.status).toBe(400);
  });

  it('refuses a hand-over that is not signed with the deployment secret', async () => {
    const id = newMessageId();
    const forged = await request(`${ig.url}/async-response/handover`, {
      method: 'POST',
      headers: {
        'content-type': 'application/soap+xml',
        'x-xcai-handover': `v1.${Date.now() + 60_000}.${'A'.repeat(43)}`,
        'x-xcai-relates-to': id,
      },
      body: responseXml(id, homeB),
    });
    expect(forged.statusCode).toBe(403);
    await forged.body.dump();
    const none = await request(`${ig.url}/async-response/handover`, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml' },
      body: responseXml(id, homeB),
    });
    expect(none.statusCode).toBe(403);
    await none.body.dump();
  });

  it('holds many requests at once and completes each with its own response', async () => {
    const peer: AsyncPeer = await startAsyncPeer(HOME_X, 'hold');
    stop.push(peer.close);
    const g = await startIGWith(
      [
        {
          homeCommunityId: HOME_X,
          name: 'X',
          async: true,
          endpoints: { iti38: { url: peer.url, timeoutMs: 8000 } },
        },
      ],
      { local: {} },
    );
    const calls = Array.from({ length: 20 }, () => soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments()));
    await peer.waitHeld(20);
    expect(
      [...(await keysUnder(redis, prefix)).keys()].filter((k) => k.includes(':pending:')).length,
    ).toBeGreaterThanOrEqual(20);
    for (const h of [...peer.held].reverse()) expect(await h.deliver()).toBe(202);
    const answers = await Promise.all(calls);
    for (const a of answers) {
      const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
      expect([a.status, res.status, res.objects.length]).toEqual([200, 'Success', 1]);
    }
  });
});

describe('requester disconnect (IHE XCA-I M3)', () => {
  it('cancels every upstream request and drops the pending async record when the consumer goes away', async () => {
    // Y never answers its synchronous ITI-38; X acknowledges with 202 and holds its async answer.
    // Timeouts and the deadline are far beyond the test, so only the disconnect can end them.
    let upstreamClosed!: () => void;
    const yClosed = new Promise<void>((r) => (upstreamClosed = r));
    let yAsked!: () => void;
    const yReceived = new Promise<void>((r) => (yAsked = r));
    const hanging = createServer((req) => {
      req.resume();
      req.socket.once('close', upstreamClosed);
      yAsked();
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    stop.push(
      () =>
        new Promise<void>((r) => {
          hanging.close(() => r());
          hanging.closeAllConnections();
        }),
    );
    const held = await startAsyncPeer(HOME_X, 'hold');
    stop.push(held.close);
    const yUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/iti38`;
    const g = await startIGWith(
      [
        {
          homeCommunityId: HOME_X,
          name: 'X',
          async: true,
          endpoints: { iti38: { url: held.url, timeoutMs: 60_000 } },
        },
        { homeCommunityId: HOME_Y, name: 'Y', endpoints: { iti38: { url: yUrl, timeoutMs: 60_000 } } },
      ],
      { deadlineMs: 120_000 },
    );
    const consumer = new AbortController();
    const call = soapCall(`${g.url}/iti18`, Action.ITI18, findDocuments(), { signal: consumer.signal });
    call.catch(() => undefined);
    await Promise.all([yReceived, held.waitHeld(1)]);
    const uuid = held.held[0].messageId.slice('urn:uuid:'.length);
    expect(await redis.get(`${prefix}${asyncKeys.pending(uuid)}`)).not.toBeNull();

    consumer.abort();
    await expect(call).rejects.toThrow();
    await yClosed; // the sub-request to Y was cancelled, not left to its 60 s timeout
    await waitFor(async () => (await redis.get(`${prefix}${asyncKeys.pending(uuid)}`)) === null);
    expect(await redis.get(`${prefix}${asyncKeys.claim(uuid)}`)).toBe('cancelled');
    // X's late answer is acknowledged and dropped; the gateway still serves the next request.
    expect(await held.held[0].deliver()).toBe(202);
    const next = await soapCall(`${ig.url}/iti18`, Action.ITI18, findDocuments());
    expect(next.status).toBe(200);
  });
});

function responseXml(relatesTo: string | undefined, home: string): string {
  return encodeEnvelope({
    action: Action.ITI38Response,
    messageId: newMessageId(),
    relatesTo,
    body: encodeAdhocQueryResponse('Success', [], [peerObject(home)]),
    request: false,
  });
}

async function postResponse(
  url: string,
  relatesTo: string | undefined,
  home: string,
): Promise<{ status: number; text: string }> {
  const r = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
    body: responseXml(relatesTo, home),
  });
  return { status: r.statusCode, text: await r.body.text() };
}

async function waitFor(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
