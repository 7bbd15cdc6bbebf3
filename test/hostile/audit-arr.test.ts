/**
 * Hostile or broken Audit Record Repositories (issue 12, item 2), with real TLS sockets: a
 * repository that accepts the connection but never reads, and one that reads a few records and
 * then drops the connection. RFC 5425 has no acknowledgement, so neither may make the sender count
 * a record as delivered that the repository did not demonstrably read; every record must reach the
 * good repository that takes over the port afterwards.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import { startAuditRepository, type AuditRepository } from '@xcai/shared/src/audit/repository';
import { createAuditSink, type ManagedAuditSink } from '@xcai/shared/src/audit/sink';
import {
  freePort,
  makeCerts,
  quietAuditLogger,
  sampleTransactionEvent,
  testSinkConfig,
  waitFor,
} from '../support/audit';

let tmp: string;
let certs: ReturnType<typeof makeCerts>;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-arr-'));
  certs = makeCerts(path.join(tmp, 'certs'), ['arr', 'gw-audit']);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A TLS server that completes mutual TLS and then behaves as `onSocket` says. */
async function hostileArr(port: number, onSocket: (s: tls.TLSSocket) => void): Promise<tls.Server> {
  const server = tls.createServer(
    {
      cert: certs.certs.arr!.cert,
      key: certs.certs.arr!.key,
      ca: certs.ca,
      requestCert: true,
      rejectUnauthorized: true,
    },
    onSocket,
  );
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return server;
}

const closeServer = (s: tls.Server) => new Promise<void>((r) => s.close(() => r()));

const sink = (spoolDir: string, port: number): ManagedAuditSink =>
  createAuditSink(
    testSinkConfig(
      certs,
      { transport: 'tls', port, spoolDir },
      { confirmMs: 300, confirmTimeoutMs: 1000, backoffMaxMs: 300, closeTimeoutMs: 2000 },
    ),
  );

async function takeOver(port: number, dir: string): Promise<AuditRepository> {
  return startAuditRepository({
    port,
    dir,
    tls: { cert: certs.certs.arr!.cert, key: certs.certs.arr!.key, ca: certs.ca },
    logger: quietAuditLogger,
  });
}

test.each([
  ['accepts and never reads', (s: tls.TLSSocket) => s.pause()],
  [
    'reads a little, then drops the connection',
    (s: tls.TLSSocket) => {
      let n = 0;
      s.on('data', (c: Buffer) => {
        n += c.length;
        if (n > 2000) s.destroy();
      });
    },
  ],
] as const)(
  'a repository that %s gets no record counted as delivered; the next one gets every record',
  async (_what, behave) => {
    const port = await freePort();
    const spoolDir = path.join(tmp, `spool-${port}`);
    const sockets: tls.TLSSocket[] = [];
    let closing = false;
    const bad = await hostileArr(port, (s) => {
      sockets.push(s);
      s.on('error', () => undefined);
      if (closing) s.destroy();
      else behave(s);
    });
    const raw: import('node:net').Socket[] = [];
    bad.on('connection', (c) => raw.push(c));
    const s = sink(spoolDir, port);
    const total = 50;
    for (let i = 0; i < total; i++) s.record(sampleTransactionEvent('ITI-43', 'responder', 'success', i));
    await s.flush();
    await waitFor(() => s.metrics().connects >= 2, 10_000, 'the sender trying again');
    expect(s.metrics().delivered).toBe(0);
    expect(s.depth()).toBe(total);

    // Stop listening first, then drop every connection (the sender may have reconnected meanwhile).
    closing = true;
    const closed = closeServer(bad);
    for (const k of [...sockets, ...raw]) k.destroy();
    await closed;
    const good = await takeOver(port, path.join(tmp, `arr-${port}`));
    expect(await s.drain(20_000)).toBe(true);
    await s.close();
    await good.close();
    const got = new Set(loadAuditRecords([good.dir]).map((r) => r.id));
    const all = loadAuditRecords([spoolDir]).map((r) => r.id);
    expect(all).toHaveLength(total);
    expect(all.filter((id) => !got.has(id))).toEqual([]);
  },
);
