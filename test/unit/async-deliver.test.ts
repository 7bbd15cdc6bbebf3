/** Delivery of async responses to ReplyTo: retries, final refusals, streamed MTOM bodies. */
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { deliver, Outbound, readSoapMessage, silentLogger, type OutgoingPart } from '@xcai/shared';
import { freePort } from '../support/redis';

const outbound = new Outbound({}, () => false);
afterAll(() => outbound.close());

function listen(
  port: number,
  handler: (status: () => number, body: Buffer, ct: string) => void,
  statuses: number[],
): Promise<Server> {
  let i = 0;
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = statuses[Math.min(i++, statuses.length - 1)];
      handler(() => status, Buffer.concat(chunks), String(req.headers['content-type']));
      res.writeHead(status).end();
    });
  });
  return new Promise((r) => s.listen(port, '127.0.0.1', () => r(s)));
}

const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));
const opts = (url: string) => ({
  outbound,
  url,
  action: 'urn:test:Response',
  windowMs: 20_000,
  attemptTimeoutMs: 5_000,
  signal: new AbortController().signal,
  log: silentLogger,
});

it('retries while the receiver is down or answers 503, then delivers', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/reply`;
  const got: Buffer[] = [];
  let server: Server | undefined;
  setTimeout(() => void listen(port, (_s, b) => got.push(b), [503, 202]).then((s) => (server = s)), 300);
  const d = await deliver({ ...opts(url), message: { kind: 'xml', xml: '<x/>' } });
  expect(d).toEqual({ ok: true });
  expect(got.map(String)).toEqual(['<x/>', '<x/>']);
  await close(server as Server);
});

it('stops at a 4xx refusal', async () => {
  const port = await freePort();
  const seen: number[] = [];
  const s = await listen(port, (st) => seen.push(st()), [400, 202]);
  const d = await deliver({ ...opts(`http://127.0.0.1:${port}/`), message: { kind: 'xml', xml: '<x/>' } });
  expect([d.ok, seen]).toEqual([false, [400]]);
  await close(s);
});

it('gives up after its window', async () => {
  const port = await freePort();
  const d = await deliver({
    ...opts(`http://127.0.0.1:${port}/`),
    windowMs: 600,
    message: { kind: 'xml', xml: '<x/>' },
  });
  expect(d.ok).toBe(false);
  expect(d.error?.message).toMatch(/connect/);
});

it('streams an MTOM reply, and does not consume its parts before a connection is made', async () => {
  const port = await freePort();
  let pulled = 0;
  async function* parts(): AsyncIterable<OutgoingPart> {
    for (let i = 0; i < 3; i++) {
      pulled++;
      yield {
        contentId: `p${i}@test`,
        contentType: 'application/dicom',
        body: Readable.from([Buffer.alloc(100_000, i)]),
      };
    }
  }
  let server: Server | undefined;
  const bodies: { body: Buffer; ct: string }[] = [];
  setTimeout(() => {
    expect(pulled).toBe(0); // connection refused so far: nothing of the reply was read
    void listen(port, (_s, body, ct) => bodies.push({ body, ct }), [202]).then((s) => (server = s));
  }, 400);
  const d = await deliver({
    ...opts(`http://127.0.0.1:${port}/`),
    message: { kind: 'mtom', envelope: '<e/>', parts: parts() },
  });
  expect(d).toEqual({ ok: true });
  const msg = await readSoapMessage(Readable.from([bodies[0].body]), bodies[0].ct, {
    maxRootBytes: 1 << 20,
    maxPartHeaderBytes: 1 << 14,
    maxParts: 10,
    maxTotalBytes: 1 << 24,
  });
  expect(String(msg.envelope)).toBe('<e/>');
  const sizes: number[] = [];
  for (let p = await msg.attachments.next(); p; p = await msg.attachments.next()) {
    let n = 0;
    for await (const c of p.body) n += (c as Buffer).length;
    sizes.push(n);
  }
  expect(sizes).toEqual([100_000, 100_000, 100_000]);
  await close(server as Server);
});

it('refuses to send where the permit does not allow (no open relay)', async () => {
  const strict = new Outbound({}, () => false);
  await expect(
    strict.post({
      endpoint: { url: 'http://127.0.0.1:9/', timeoutMs: 1000, maxConcurrent: 1, maxResponseBytes: 1 },
      contentType: 'x',
      body: '',
      signal: new AbortController().signal,
      headersTimeoutMs: 1000,
      permit: (u) => u === 'http://127.0.0.1:10/',
    }),
  ).rejects.toThrow(/no directory entry allows/);
  await strict.close();
});
