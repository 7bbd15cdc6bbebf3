/**
 * Replica-to-replica calls (async hand-over) reach the other replica at its pod address, which the
 * shared certificate does not name: the check is "presents our own identity, chained to our
 * anchors" instead of the host name. Verification is never switched off.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallFailure, Outbound } from '@xcai/shared';
import { ownCertificateNames } from '@xcai/shared/src/security/certificates';
import { ROOT } from '../support/federation';

const dir = mkdtempSync(join(tmpdir(), 'replica-tls-'));
const other = mkdtempSync(join(tmpdir(), 'replica-tls-other-'));
let server: Server;
let rogue: Server;
let url = '';
let rogueUrl = '';

function certs(out: string, ...names: string[]): void {
  execFileSync(join(ROOT, 'deploy/certs/make-certs.sh'), [out, ...names], { stdio: 'ignore' });
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `https://127.0.0.1:${(s.address() as AddressInfo).port}/async-response/handover`;
}

beforeAll(async () => {
  // The deployment's certificate names the service, not any pod address.
  certs(dir, 'gateway:DNS:gw-a.example');
  certs(other, 'gateway:DNS:gw-a.example');
  const pem = (d: string, f: string) => readFileSync(join(d, f));
  const handler = (_req: unknown, res: { end(s: string): void }) => res.end('ok');
  server = createServer({ cert: pem(dir, 'gateway.crt'), key: pem(dir, 'gateway.key') }, handler);
  rogue = createServer({ cert: pem(other, 'gateway.crt'), key: pem(other, 'gateway.key') }, handler);
  url = await listen(server);
  rogueUrl = await listen(rogue);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => rogue.close(() => r()));
});

function post(out: Outbound, target: string, sameIdentityAs?: string[]) {
  return out
    .post({
      endpoint: { url: target, timeoutMs: 5000, maxConcurrent: 4, maxResponseBytes: 1024 },
      contentType: 'text/plain',
      body: 'x',
      signal: AbortSignal.timeout(5000),
      headersTimeoutMs: 5000,
      permit: (u) => u === target,
      tlsProfile: sameIdentityAs ? { sameIdentityAs } : undefined,
    })
    .then(
      async (r) => (await r.body.toArray()).join(''),
      (e: unknown) => (e instanceof CallFailure ? `failed: ${e.message}` : `error: ${String(e)}`),
    );
}

it('reads our own names from the certificate', () => {
  expect(ownCertificateNames(readFileSync(join(dir, 'gateway.crt')))).toEqual(['gateway', 'gw-a.example']);
});

it('the host name check refuses a pod address the certificate does not name', async () => {
  const out = new Outbound({ ca: [readFileSync(join(dir, 'ca.crt'))] }, () => false);
  expect(await post(out, url)).toMatch(/^failed: TLS failure/);
  await out.close();
});

it('a replica presenting our identity is accepted at its pod address', async () => {
  const out = new Outbound({ ca: [readFileSync(join(dir, 'ca.crt'))] }, () => false);
  expect(await post(out, url, ['gateway', 'gw-a.example'])).toBe('ok');
  await out.close();
});

it('another identity, or our name from another CA, is refused', async () => {
  const out = new Outbound({ ca: [readFileSync(join(dir, 'ca.crt'))] }, () => false);
  expect(await post(out, url, ['gw-b.example'])).toMatch(/^failed: TLS failure/);
  expect(await post(out, rogueUrl, ['gateway', 'gw-a.example'])).toMatch(/^failed: TLS failure/);
  await out.close();
});
