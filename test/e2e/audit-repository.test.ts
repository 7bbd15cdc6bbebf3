/**
 * The ATNA sink against the product's own Audit Record Repository (RFC 5425 over mutual TLS).
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import {
  startAuditRepository,
  type AuditRepository,
  type StoredAuditRecord,
} from '@xcai/shared/src/audit/repository';
import { createAuditSink, type AuditSinkConfig, type ManagedAuditSink } from '@xcai/shared/src/audit/sink';
import { recordHash, verifySpool } from '@xcai/shared/src/audit/spool';
import { formatSyslogMessage, frameOctetCounted, parseSyslogMessage } from '@xcai/shared/src/audit/syslog';
import { makeCerts, sampleTransactionEvent, transactionMatrix, waitFor } from '../support/audit';

type Certs = ReturnType<typeof makeCerts>;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const source = { auditSourceId: 'gw-a', applicationName: 'xcai-test' };
let tmp: string;
let good: Certs;
let rogue: Certs;
let n = 0;
const dir = (name: string): string => path.join(tmp, `${name}-${++n}`);

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-arr-'));
  good = makeCerts(path.join(tmp, 'certs'), ['arr', 'gw-audit']);
  rogue = makeCerts(path.join(tmp, 'rogue'), ['gw-audit']); // same CN, another CA
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function startArr(arrDir: string, port = 0): Promise<AuditRepository> {
  return startAuditRepository({
    host: '127.0.0.1',
    port,
    dir: arrDir,
    tls: { cert: good.certs.arr!.cert, key: good.certs.arr!.key, ca: good.ca },
    logger: quiet,
  });
}

function sinkFor(
  port: number,
  spoolDir: string,
  extra: Partial<AuditSinkConfig> = {},
  client = good.certs['gw-audit']!,
): ManagedAuditSink {
  return createAuditSink({
    transport: 'tls',
    host: '127.0.0.1',
    port,
    tls: { cert: client.cert, key: client.key, ca: good.ca, servername: 'arr' },
    spoolDir,
    source,
    ratePerSecond: 1000,
    confirmMs: 300,
    backoffInitialMs: 50,
    backoffMaxMs: 500,
    closeTimeoutMs: 3000,
    logger: quiet,
    ...extra,
  });
}

function stored(arrDir: string): StoredAuditRecord[] {
  return fs
    .readdirSync(arrDir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(arrDir, f), 'utf8').split('\n'))
    .filter((l) => l)
    .map((l) => JSON.parse(l) as StoredAuditRecord);
}

const spoolIds = (spoolDir: string): string[] => loadAuditRecords([spoolDir]).map((r) => r.id);
const eventIds = (xmls: string[]): string[] =>
  xmls.map((x) => /<EventID csd-code="(\d+)"/.exec(x)![1]!).sort();

describe('product Audit Record Repository', () => {
  test('N transactions give exactly the expected records, with peer identity and a verifiable chain', async () => {
    const arrDir = dir('arr');
    const arr = await startArr(arrDir);
    const spoolDir = dir('spool');
    const sink = sinkFor(arr.port, spoolDir);
    const events = transactionMatrix().map((m) => m.event);
    const expected = events.flatMap((e) => buildAuditMessages(e, source));
    for (const e of events) sink.record(e);
    await waitFor(() => arr.stats().stored >= expected.length, 20_000, 'records at the ARR');
    await sink.close();
    await arr.close();
    const recs = stored(arrDir);
    expect(recs).toHaveLength(expected.length);
    expect(new Set(recs.map((r) => r.id))).toEqual(new Set(spoolIds(spoolDir)));
    expect(eventIds(recs.map((r) => r.xml))).toEqual(eventIds(expected));
    expect(
      recs.every(
        (r) => r.peer.includes('CN=gw-audit') && r.msgId === 'IHE+RFC-3881' && r.appName === 'xcai-test',
      ),
    ).toBe(true);
    // The chain travels with the records: the ARR copy verifies too.
    recs.sort((a, b) => a.seq! - b.seq!);
    recs.forEach((r, i) => {
      expect(recordHash(r.prev!, r.seq!, r.id, r.timestamp, r.xml)).toBe(r.hash);
      if (i > 0) expect(r.prev).toBe(recs[i - 1]!.hash);
    });
    expect(sink.metrics()).toMatchObject({ delivered: expected.length, depth: 0 });
    expect(verifySpool(spoolDir).ok).toBe(true);
  });

  test('ARR stopped during traffic and restarted: every record arrives (duplicates de-duplicated by id)', async () => {
    const arrDir = dir('arr');
    let arr = await startArr(arrDir);
    const port = arr.port;
    const spoolDir = dir('spool');
    const sink = sinkFor(port, spoolDir, { ratePerSecond: 100 });
    const total = 100;
    for (let i = 0; i < total; i++) sink.record(sampleTransactionEvent('ITI-39', 'responder', 'success', i));
    await waitFor(() => arr.stats().stored >= 20, 20_000, 'first records');
    await arr.close();
    await waitFor(() => !sink.metrics().connected, 5000, 'sink noticing the outage');
    sink.record(sampleTransactionEvent('ITI-18', 'responder', 'success', 1000));
    await new Promise((r) => setTimeout(r, 300));
    arr = await startArr(arrDir, port);
    await waitFor(
      () => new Set(stored(arrDir).map((r) => r.id)).size >= total + 1,
      30_000,
      'all records after restart',
    );
    await sink.close();
    await arr.close();
    const ids = stored(arrDir).map((r) => r.id);
    expect(new Set(ids)).toEqual(new Set(spoolIds(spoolDir)));
    expect(ids).toHaveLength(total + 1); // stored once each; resent duplicates were dropped
    console.log(`outage test: ${arr.stats().duplicates} duplicate(s) received and dropped after the restart`);
  });

  test('records spooled while the ARR is down are delivered after a process restart (cursor resumes)', async () => {
    const arrDir = dir('arr');
    const probe = await startArr(arrDir);
    const port = probe.port;
    await probe.close();
    const spoolDir = dir('spool');
    const first = sinkFor(port, spoolDir, { closeTimeoutMs: 300 });
    for (let i = 0; i < 10; i++) first.record(sampleTransactionEvent('RAD-69', 'requester', 'partial', i));
    await first.close();
    expect(first.depth()).toBe(20);
    const arr = await startArr(arrDir, port);
    const second = sinkFor(port, spoolDir);
    await waitFor(() => arr.stats().stored >= 20, 20_000, 'resumed delivery');
    expect(await second.drain(10_000)).toBe(true);
    await second.close();
    await arr.close();
    expect(new Set(stored(arrDir).map((r) => r.id))).toEqual(new Set(spoolIds(spoolDir)));
    // Nothing re-sent after the confirmed cursor: a third start sends nothing.
    const arr2 = await startArr(arrDir, port);
    const third = sinkFor(port, spoolDir);
    expect(third.depth()).toBe(0);
    await third.close();
    await arr2.close();
    expect(arr2.stats().received).toBe(0);
  });

  test('a client certificate from another CA is refused: nothing stored, the sink reports it and keeps the records', async () => {
    const arrDir = dir('arr');
    const arr = await startArr(arrDir);
    const spoolDir = dir('spool');
    const sink = sinkFor(arr.port, spoolDir, { closeTimeoutMs: 200 }, rogue.certs['gw-audit']!);
    for (let i = 0; i < 5; i++) sink.record(sampleTransactionEvent('ITI-38', 'requester', 'success', i));
    await waitFor(
      () => arr.stats().rejectedConnections >= 2 && sink.metrics().lastError !== undefined,
      10_000,
      'rejections',
    );
    expect(sink.metrics().delivered).toBe(0);
    expect(sink.depth()).toBe(5);
    await sink.close();
    await arr.close();
    expect(arr.stats().stored).toBe(0);
    expect(stored(arrDir)).toHaveLength(0);
  });

  test('the ARR certificate must match the expected name (hostname verification)', async () => {
    const arr = await startArr(dir('arr'));
    const sink = sinkFor(arr.port, dir('spool'), { closeTimeoutMs: 200 });
    const wrong = createAuditSink({
      transport: 'tls',
      host: '127.0.0.1',
      port: arr.port,
      tls: {
        cert: good.certs['gw-audit']!.cert,
        key: good.certs['gw-audit']!.key,
        ca: good.ca,
        servername: 'not-the-arr',
      },
      spoolDir: dir('spool'),
      source,
      backoffInitialMs: 50,
      closeTimeoutMs: 200,
      logger: quiet,
    });
    wrong.record(sampleTransactionEvent('ITI-18', 'requester', 'success'));
    await waitFor(
      () => (wrong.metrics().lastError ?? '').includes('not-the-arr'),
      10_000,
      'hostname failure',
    );
    expect(wrong.metrics().connectFailures).toBeGreaterThan(0);
    await wrong.close();
    await sink.close();
    await arr.close();
    expect(arr.stats().stored).toBe(0);
  });

  test('raw frames: duplicates dropped, malformed and oversized frames close the connection', async () => {
    const arrDir = dir('arr');
    const arr = await startArr(arrDir);
    const connect = (): Promise<tls.TLSSocket> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({
          host: '127.0.0.1',
          port: arr.port,
          servername: 'arr',
          ca: good.ca,
          cert: good.certs['gw-audit']!.cert,
          key: good.certs['gw-audit']!.key,
        });
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
      });
    const closed = (s: tls.TLSSocket): Promise<void> =>
      new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));
    const msg = formatSyslogMessage(
      { timestamp: new Date().toISOString(), hostname: 'h', appName: 'raw', procId: '1' },
      '[xcai@32473 id="dup-1"]',
      buildAuditMessages(sampleTransactionEvent('ITI-18', 'requester', 'success'), source)[0]!,
    );
    const s1 = await connect();
    s1.on('error', () => undefined);
    s1.write(Buffer.concat([frameOctetCounted(msg), frameOctetCounted(msg)]));
    await waitFor(() => arr.stats().received >= 2, 5000, 'two frames');
    s1.write('12x <85>1 broken');
    await closed(s1);
    const s2 = await connect();
    s2.on('error', () => undefined);
    s2.write(`${2 * 1024 * 1024} <85>1 `);
    await closed(s2);
    await arr.close();
    expect(arr.stats()).toMatchObject({ stored: 1, duplicates: 1, malformed: 2 });
    expect(stored(arrDir).map((r) => r.id)).toEqual(['dup-1']);
  });
});

describe('RFC 5426 UDP transport (option)', () => {
  test('one syslog message per datagram, no framing', async () => {
    const server = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    server.on('message', (m) => got.push(m));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
    const port = server.address().port;
    const sink = createAuditSink({
      transport: 'udp',
      host: '127.0.0.1',
      port,
      spoolDir: dir('spool'),
      source,
      logger: quiet,
    });
    for (let i = 0; i < 5; i++) sink.record(sampleTransactionEvent('ITI-18', 'requester', 'success', i));
    await waitFor(() => got.length >= 5, 10_000, 'datagrams');
    expect(await sink.drain(5000)).toBe(true);
    await sink.close();
    server.close();
    const parsed = got.map((m) => parseSyslogMessage(m));
    expect(
      parsed.every((p) => p.pri === 85 && p.msgId === 'IHE+RFC-3881' && p.msg.startsWith('<AuditMessage>')),
    ).toBe(true);
    expect(new Set(parsed.map((p) => p.sd['xcai@32473']!.id)).size).toBe(5);
  });
});
