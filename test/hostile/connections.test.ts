/**
 * Hostile connections against a responding gateway process with mutual TLS (issue 12, item 1),
 * with small bounds so that each case takes a second: connections that never send a ClientHello
 * are bounded per address (the oldest closed) and closed at the handshake timeout; plain HTTP sent
 * to the TLS port is closed at once (nothing is written on a connection whose handshake never
 * finished, so nothing lingers in CLOSE-WAIT); a sender's fault is logged at warn, not error.
 * The full-size flood (2,100 connections held 15 s, against both gateways) is
 * test/e2e/connection-flood.test.ts.
 */
import { connect } from 'node:net';
import { Action, encodeEnvelope, encodeFindDocumentsRequest } from '@xcai/shared';
import { makePki, postWith, type TestPki } from '../support/certs';
import { spawnGateway, tlsEnv, type GatewayProcess } from '../support/processes';
import { idleConnections, serverConnectionsHeld } from '../support/sockets';

const PER_ADDRESS = 8;
const HANDSHAKE_MS = 1_000;
let pki: TestPki;
let rg: GatewayProcess;
let port: number;

beforeAll(async () => {
  pki = makePki(['gw-r', 'gw-a'], 'hostile-conn');
  rg = await spawnGateway(
    'responding',
    {
      homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.342',
      name: 'R',
      local: { registry: { url: 'http://127.0.0.1:9/registry' } },
      communities: [
        {
          homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.341',
          name: 'A',
          identity: { trustAnchors: [pki.ca], names: ['gw-a'] },
        },
      ],
      inboundLimits: {
        maxHalfOpenPerAddress: PER_ADDRESS,
        maxHalfOpen: 4 * PER_ADDRESS,
        handshakeTimeoutMs: HANDSHAKE_MS,
      },
    },
    tlsEnv(pki, 'gw-r', 'required'),
  );
  port = Number(new URL(rg.url).port);
}, 60_000);

afterAll(async () => {
  await rg?.stop();
  pki?.remove();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function untilHeldAtMost(n: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  while (serverConnectionsHeld(port) > n && Date.now() < end) await sleep(50);
  return serverConnectionsHeld(port);
}

it('keeps at most maxHalfOpenPerAddress connections without a handshake, and closes those at the handshake timeout', async () => {
  const flood = await idleConnections('127.0.0.1', port, 50, '127.0.0.4');
  expect(await untilHeldAtMost(PER_ADDRESS, 2_000)).toBeLessThanOrEqual(PER_ADDRESS);
  expect(await untilHeldAtMost(0, HANDSHAKE_MS + 2_000)).toBe(0);
  expect(flood.open).toBe(0);
  flood.close();
});

it('closes a plain-HTTP request sent to the TLS port at once, leaving nothing behind', async () => {
  const t0 = Date.now();
  const closedAfter = await new Promise<number>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('connect', () => s.write('POST /iti38 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'));
    s.on('data', () => undefined);
    s.on('close', () => resolve(Date.now() - t0));
    setTimeout(() => resolve(Infinity), 5_000).unref();
  });
  expect(closedAfter).toBeLessThan(HANDSHAKE_MS);
  expect(await untilHeldAtMost(0, 1_000)).toBe(0);
});

it("logs a sender's fault at warn, not error", async () => {
  const before = rg.output.length;
  const r = await postWith(
    pki.client('gw-a'),
    `${rg.url}/iti38`,
    encodeEnvelope({ action: Action.ITI43, body: encodeFindDocumentsRequest('X^^^&1.2&ISO'), request: true }),
  );
  expect('status' in r && r.status).toBe(400);
  await sleep(200);
  const lines = rg.output.slice(before).join('\n');
  expect(lines).toMatch(/"level":"warn"[^\n]*request refused/);
  expect(lines).not.toMatch(/"level":"error"/);
});
