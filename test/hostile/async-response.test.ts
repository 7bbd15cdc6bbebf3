/**
 * `/async-response` against hostile senders (issue 12, items 3, 4 and 7), an initiating gateway
 * process, real sockets. The endpoint takes connections without a client certificate (it
 * authenticates the answer, not the connection), so what a sender can make it read, hold and wait
 * for before the answer's head shows that it answers one of our requests is bounded:
 *
 *  - a sender trickling bytes is cut off by the header timeout (item 3);
 *  - a big unauthenticated post is refused from its head, before its body is read: four 64 MiB
 *    posts in parallel leave the gateway's memory where it was (item 4);
 *  - unauthenticated posts in progress are capped per address (item 4);
 *  - an answer with the wrong wsa:Action is refused without being taken as the answer, and the
 *    right one that follows completes the query (item 7).
 */
import { Readable } from 'node:stream';
import { request } from 'undici';
import {
  Action,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  encodeEnvelope,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { startAsyncPeer, type AsyncPeer } from '../support/async-peer';
import { demoSeeds, spawnCommunity, type CommunityProcess } from '../support/federation';
import { peakRss, spawnGateway, type GatewayProcess } from '../support/processes';
import { rawPost } from '../support/sockets';

const HOME_Y = 'urn:oid:1.3.6.1.4.1.21367.13.70.331';
const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HEADERS_TIMEOUT_MS = 1_500;

let ref: CommunityProcess;
let peer: AsyncPeer;
let ig: GatewayProcess;
let host: string;
let port: number;

beforeAll(async () => {
  ref = await spawnCommunity([(await demoSeeds()).A]);
  peer = await startAsyncPeer(HOME_Y, 'wrong-action-first');
  ig = await spawnGateway(
    'initiating',
    {
      homeCommunityId: ref.homeCommunityId,
      name: 'A',
      deadlineMs: 8_000,
      local: { registry: { url: ref.registry } },
      communities: [{ homeCommunityId: HOME_Y, name: 'Y', async: true, endpoints: { iti38: peer.url } }],
      consumers: [{ name: 'PACS' }],
      inboundLimits: {
        headersTimeoutMs: HEADERS_TIMEOUT_MS,
        bodyIdleTimeoutMs: 1_000,
        requestsPerSecond: 1000,
        burst: 1000,
      },
    },
    // In-process correlation store (one replica): nothing of this test goes to a shared Redis.
    { REDIS_URL: '' },
  );
  host = new URL(ig.url).hostname;
  port = Number(new URL(ig.url).port);
}, 60_000);

afterAll(async () => {
  await ig?.stop();
  await peer?.close();
  await ref?.stop();
});

const soap = { 'content-type': 'application/soap+xml; charset=UTF-8' };

/** The start of an answer to a request we never sent, up to the opening of its body payload. */
function head(relatesTo = 'urn:uuid:00000000-0000-4000-8000-000000000012'): Buffer {
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" ` +
      `xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><wsa:Action>${Action.ITI38Response}</wsa:Action>` +
      `<wsa:MessageID>urn:uuid:${crypto.randomUUID()}</wsa:MessageID><wsa:RelatesTo>${relatesTo}</wsa:RelatesTo>` +
      `</soap:Header><soap:Body><query:AdhocQueryResponse xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" ` +
      `status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"><!--`,
  );
}

/** `total` bytes: the head, padding inside a comment, and the end of the envelope. */
function* bigAnswer(total: number): Generator<Buffer> {
  const h = head();
  const tail = Buffer.from('--></query:AdhocQueryResponse></soap:Body></soap:Envelope>');
  yield h;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let left = total - h.length - tail.length; left > 0; left -= chunk.length)
    yield left >= chunk.length ? chunk : chunk.subarray(0, left);
  yield tail;
}

/** The head, one byte at a time (never finished). */
function* trickle(): Generator<Buffer> {
  for (const b of head()) yield Buffer.from([b]);
}

/** A sender trickling the head of a response, a byte every 100 ms, from `localAddress`. */
const trickling = (o: { maxMs: number; localAddress?: string }) =>
  rawPost(host, port, '/async-response', { ...soap, 'content-length': '100000' }, trickle(), {
    delayMs: 100,
    ...o,
  });

it('cuts off a sender that trickles the head of a response (header timeout)', async () => {
  const r = await trickling({ maxMs: 15_000 });
  process.stdout.write(
    `trickling sender: HTTP ${r.status} after ${r.endedAfterMs} ms, ${r.sent} bytes sent\n`,
  );
  expect(r.endedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 3_000);
  expect(r.status).toBe(408);
});

it('refuses four 64 MiB unauthenticated posts from their head: little read, memory unchanged', async () => {
  const size = 64 * 1024 * 1024;
  const before = peakRss(ig.proc.pid as number);
  const results = await Promise.all(
    Array.from({ length: 4 }, () =>
      rawPost(host, port, '/async-response', { ...soap, 'content-length': String(size) }, bigAnswer(size), {
        maxMs: 30_000,
      }),
    ),
  );
  const after = peakRss(ig.proc.pid as number);
  process.stdout.write(
    `4 × 64 MiB unauthenticated posts: ${results.map((r) => `HTTP ${r.status} after ${r.endedAfterMs} ms, ${(r.sent / 2 ** 20).toFixed(1)} MiB sent`).join('; ')}; ` +
      `gateway peak RSS ${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MiB\n`,
  );
  for (const r of results) {
    expect(r.status).toBe(400);
    expect(r.text).toContain('matches no pending request');
    expect(r.sent).toBeLessThan(16 * 1024 * 1024); // refused long before the end (socket buffers aside)
  }
  expect(after - before).toBeLessThan(32 * 1024 * 1024);
});

it('caps unauthenticated responses in progress per address', async () => {
  const slow = Array.from({ length: 4 }, () => trickling({ maxMs: 10_000 }));
  await new Promise((r) => setTimeout(r, 300));
  const fifth = await trickling({ maxMs: 10_000 });
  expect(fifth.status).toBe(429);
  expect(fifth.endedAfterMs).toBeLessThan(1_000);
  // Another address is not affected by this one's cap.
  const other = await trickling({ maxMs: 10_000, localAddress: '127.0.0.3' });
  expect(other.status).toBe(408);
  await Promise.all(slow);
});

it('refuses an answer with the wrong wsa:Action without taking it; the right one that follows completes the query', async () => {
  const res = await request(`${ig.url}/iti18`, {
    method: 'POST',
    headers: soap,
    body: Readable.from([
      encodeEnvelope({ action: Action.ITI18, body: encodeFindDocumentsRequest(PATIENT), request: true }),
    ]),
    signal: AbortSignal.timeout(20_000),
  });
  const env = decodeEnvelope(await res.body.text(), {}, false);
  const answer = decodeAdhocQueryResponse(env.doc, env.payload);
  expect(answer.status).toBe('Success');
  expect(answer.objects.filter((o) => o.attr('home') === HOME_Y)).toHaveLength(1);
  // The peer's deliveries: the wrong action refused (400), the right one accepted (202).
  expect(peer.deliveries).toEqual([400, 202]);
});
