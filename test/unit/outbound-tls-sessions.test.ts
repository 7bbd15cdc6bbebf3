/**
 * The outbound client resumes TLS sessions with a peer on its next connection — also after a full
 * garbage collection (undici's own cache holds sessions weakly and forgets them), so that a
 * national fan-out does not pay a full handshake (chain verification, identity check) per
 * reconnection. Sessions are per host and port: another server on the same host is not offered it.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { TLSSocket } from 'node:tls';
import { Outbound } from '@xcai/shared';
import { makePki, type TestPki } from '../support/certs';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let pki: TestPki;
const servers: { server: Server; url: string; handshakes: boolean[] }[] = [];

beforeAll(async () => {
  pki = makePki(['peer', 'gw'], 'sessions');
  for (let k = 0; k < 2; k++) {
    const handshakes: boolean[] = [];
    const server = createServer(
      {
        cert: readFileSync(pki.cert('peer')),
        key: readFileSync(pki.key('peer')),
        ca: readFileSync(pki.ca),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (_req, res) => {
        // Close after each answer: every request needs a new connection.
        res.setHeader('connection', 'close');
        res.end('ok');
      },
    );
    server.on('secureConnection', (s: TLSSocket) => handshakes.push(s.isSessionReused()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push({
      server,
      url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/iti38`,
      handshakes,
    });
  }
});

afterAll(async () => {
  for (const s of servers) await new Promise<void>((r) => s.server.close(() => r()));
  pki.remove();
});

async function post(out: Outbound, url: string): Promise<string> {
  const res = await out.post({
    endpoint: { url, timeoutMs: 5000, maxConcurrent: 4, maxResponseBytes: 1024 },
    contentType: 'text/plain',
    body: 'x',
    signal: AbortSignal.timeout(5000),
    headersTimeoutMs: 5000,
  });
  let text = '';
  for await (const c of res.body) text += String(c);
  return text;
}

it('resumes the session on new connections, after a full GC too, and not with another port', async () => {
  const out = new Outbound(
    { cert: readFileSync(pki.cert('gw')), key: readFileSync(pki.key('gw')), ca: [readFileSync(pki.ca)] },
    (u) => servers.some((s) => s.url === u),
  );
  try {
    const [a, b] = servers;
    for (let i = 0; i < 4; i++) {
      expect(await post(out, a.url)).toBe('ok');
      await new Promise((r) => setTimeout(r, 20));
      gc();
    }
    expect(a.handshakes).toEqual([false, true, true, true]);
    // Same host, other port (another peer): a full handshake of its own, then resumption.
    expect(await post(out, b.url)).toBe('ok');
    gc();
    expect(await post(out, b.url)).toBe('ok');
    expect(b.handshakes).toEqual([false, true]);
  } finally {
    await out.close();
  }
});
