/**
 * Per-peer limits at the responding gateway (issue 6, R43): a community flooding the gateway gets
 * 429s for what exceeds its own allowance while another community is served; rate, size and
 * connection limits per community; slow senders (headers, body) are cut off with a SOAP fault.
 * No timed assertions: waits below only detect hangs.
 */
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { Action, encodeEnvelope, type RunningGateway, encodeFindDocumentsRequest } from '@xcai/shared';
import { makePki, postWith, type TestPki } from '../support/certs';
import { demoSeeds, directory, spawnCommunity, startRG, type CommunityProcess } from '../support/federation';

const HOME = {
  B: 'urn:oid:1.3.6.1.4.1.21367.13.70.302',
  C: 'urn:oid:1.3.6.1.4.1.21367.13.70.303',
  D: 'urn:oid:1.3.6.1.4.1.21367.13.70.304',
  E: 'urn:oid:1.3.6.1.4.1.21367.13.70.305',
  F: 'urn:oid:1.3.6.1.4.1.21367.13.70.306',
};

let pki: TestPki;
let ref: CommunityProcess;
let rg: RunningGateway;

const iti38 = (padding = 0) =>
  encodeEnvelope({
    action: Action.ITI38,
    body: encodeFindDocumentsRequest('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'),
    extraHeaders: padding ? `<!--${'x'.repeat(padding)}-->` : undefined,
    request: true,
  });

const community = (k: keyof typeof HOME, extra: Record<string, unknown> = {}) => ({
  homeCommunityId: HOME[k],
  name: k,
  identity: { trustAnchors: [pki.ca], names: [`gw-${k.toLowerCase()}`] },
  ...extra,
});

beforeAll(async () => {
  pki = makePki(['gw-b', 'gw-c', 'gw-d', 'gw-e', 'gw-f', 'gw-r'], 'limits');
  // Every query takes a while at the registry, so requests stay in flight.
  ref = await spawnCommunity([(await demoSeeds()).A], { delayMs: 1000 });
  rg = await startRG(
    directory({
      homeCommunityId: ref.homeCommunityId,
      name: 'R',
      deadlineMs: 20_000,
      local: { registry: { url: ref.registry, timeoutMs: 15_000, maxConcurrent: 64 } },
      inboundLimits: {
        maxConcurrentRequests: 4,
        requestsPerSecond: 1000,
        burst: 1000,
        bodyIdleTimeoutMs: 500,
        headersTimeoutMs: 1000,
        requestTimeoutMs: 5000,
      },
      communities: [
        community('B'),
        community('C'),
        community('D', { inboundLimits: { requestsPerSecond: 1, burst: 2 } }),
        community('E', { inboundLimits: { maxConnections: 2 } }),
        community('F', { inboundLimits: { maxRequestBytes: 2048 } }),
      ],
    }),
    {
      settings: {
        directoryFile: '(inline)',
        host: '127.0.0.1',
        port: 0,
        mgmtPort: -1,
        audit: { transport: 'none' },
        maxRequestBytes: 4 * 1024 * 1024,
        tls: pki.settings('gw-r', 'required'),
      },
    },
  );
}, 90_000);

afterAll(async () => {
  await rg?.close();
  await ref?.stop();
  pki?.remove();
});

const statusOf = (r: Awaited<ReturnType<typeof postWith>>) => ('error' in r ? 'error' : r.status);

describe('one noisy community cannot starve the others', () => {
  it('refuses what exceeds the flooding community’s in-flight allowance and serves another community meanwhile', async () => {
    let firstRefusal!: () => void;
    const refused = new Promise<void>((r) => (firstRefusal = r));
    const noisy = pki.client('gw-b');
    const flood = Array.from({ length: 40 }, () =>
      postWith(noisy, `${rg.url}/iti38`, iti38()).then((r) => {
        if (statusOf(r) === 429) firstRefusal();
        return r;
      }),
    );
    await refused; // B has its allowance in flight now
    const quiet = await postWith(pki.client('gw-c'), `${rg.url}/iti38`, iti38());
    expect(statusOf(quiet)).toBe(200);
    const statuses = (await Promise.all(flood)).map(statusOf);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(4);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const r429 = (await Promise.all(flood)).find((r) => statusOf(r) === 429) as { text: string };
    expect(r429.text).toContain('too many concurrent requests from this peer');
  });

  it('rate-limits a community above its own rate (429 + SOAP fault), not the others', async () => {
    const d = pki.client('gw-d');
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => postWith(d, `${rg.url}/iti38`, iti38())),
    );
    const statuses = burst.map(statusOf);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(6);
    expect((burst.find((r) => statusOf(r) === 429) as { text: string }).text).toContain('rate limit');
    const c = pki.client('gw-c');
    const others = await Promise.all(
      Array.from({ length: 3 }, () => postWith(c, `${rg.url}/iti38`, iti38())),
    );
    expect(others.map(statusOf)).toEqual([200, 200, 200]);
  });
});

describe('per-community request size', () => {
  it('refuses a request above the community’s limit, early when declared, and serves it for others', async () => {
    // F may send 2 KiB; C has the default (4 MiB).
    const f = pki.client('gw-f');
    const big = await postWith(f, `${rg.url}/iti38`, iti38(1500));
    expect(statusOf(big)).toBe(400);
    expect((big as { text: string }).text).toContain('too large');
    const huge = await postWith(f, `${rg.url}/iti38`, iti38(20_000));
    expect(statusOf(huge)).toBe(413);
    const c = await postWith(pki.client('gw-c'), `${rg.url}/iti38`, iti38(20_000));
    expect(statusOf(c)).toBe(200);
  });
});

/** Opens a TLS connection presenting `name`, writes `send`, and collects what comes back until close. */
function raw(
  name: string,
  send: (s: TLSSocket) => void,
  closedFirst?: () => void,
): Promise<{ data: string; error?: Error }> {
  return new Promise((resolve) => {
    let data = '';
    let error: Error | undefined;
    let secure = false;
    const s = connect({
      host: '127.0.0.1',
      port: Number(new URL(rg.url).port),
      ca: readFileSync(pki.ca),
      cert: readFileSync(pki.cert(name)),
      key: readFileSync(pki.key(name)),
      servername: 'localhost',
    });
    s.on('secureConnect', () => {
      secure = true;
      send(s);
    });
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('error', (e) => (error = e));
    s.on('close', () => {
      if (!secure) closedFirst?.();
      resolve({ data, error });
    });
    setTimeout(() => s.destroy(new Error('hang detector: no close')), 30_000).unref();
  });
}

describe('slow senders', () => {
  it('cuts off a request whose body stops arriving (408 + SOAP fault)', async () => {
    const r = await raw('gw-c', (s) =>
      s.write(
        `POST /iti38 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/soap+xml\r\nContent-Length: 5000\r\n\r\n<soap:Envelope`,
      ),
    );
    expect(r.data).toMatch(/^HTTP\/1\.1 408/);
    expect(r.data).toContain('request body not received in time');
  });

  it('cuts off a request that trickles in for longer than requestTimeoutMs (408 + SOAP fault)', async () => {
    let timer: NodeJS.Timeout | undefined;
    const r = await raw('gw-c', (s) => {
      s.write(
        `POST /iti38 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/soap+xml\r\nContent-Length: 5000\r\n\r\n`,
      );
      // A byte every 200 ms: never idle for bodyIdleTimeoutMs (500 ms), never complete.
      timer = setInterval(() => s.writable && s.write(' '), 200);
    });
    clearInterval(timer);
    expect(r.data).toMatch(/^HTTP\/1\.1 408/);
    expect(r.data).toContain('request not received in time');
  });

  it('cuts off a request whose headers never end (408 + SOAP fault)', async () => {
    const r = await raw('gw-c', (s) => s.write('POST /iti38 HTTP/1.1\r\nHost: localhost\r\nX-Slow: '));
    expect(r.data).toMatch(/^HTTP\/1\.1 408/);
    expect(r.data).toContain('request not received in time');
  });
});

describe('connections per community', () => {
  it('closes the connections of a community beyond its limit', async () => {
    const request =
      'POST /iti38 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n' +
      `Connection: close\r\nContent-Length: ${Buffer.byteLength(iti38())}\r\n\r\n${iti38()}`;
    // Connect four times, then (once each is connected or already closed) send a request on every
    // connection still open: the first ones hold their connections while the others arrive.
    const connected: TLSSocket[] = [];
    let settled = 0;
    const sendAll = () => {
      if (++settled === 4) for (const x of connected) if (!x.destroyed) x.write(request);
    };
    const out = await Promise.all(
      Array.from({ length: 4 }, () =>
        raw(
          'gw-e',
          (s) => {
            connected.push(s);
            sendAll();
          },
          sendAll,
        ),
      ),
    );
    expect(out.filter((r) => r.data.startsWith('HTTP/1.1 200')).length).toBe(2);
    expect(out.filter((r) => r.data === '').length).toBe(2);
  });
});
