/**
 * ATNA audit benchmarks, run by hand: `node test/bench/run.js audit-throughput [--smoke]`.
 *
 * (a) request-path cost of `record()` (enqueue only) vs the no-op sink, ns per call and ratio;
 *     plus the off-path writer cost per record (build XML + hash chain + append + fdatasync).
 * (b) records/s delivered end to end (record → spool → RFC 5425 TLS → receiver stored) to the
 *     product Audit Record Repository, and to rsyslogd when it is installed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { noopAuditSink, type AuditEvent, type AuditSink } from '@xcai/shared/src/audit/event';
import { startAuditRepository } from '@xcai/shared/src/audit/repository';
import { createAuditSink } from '@xcai/shared/src/audit/sink';
import {
  findRsyslogd,
  freePort,
  makeCerts,
  RsyslogReceiver,
  sampleTransactionEvent,
  waitFor,
} from '../support/audit';

const smoke = process.argv.includes('--smoke');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const source = { auditSourceId: 'bench-gw', applicationName: 'xcai-bench' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-bench-'));

function events(n: number): AuditEvent[] {
  return Array.from({ length: n }, (_, i) =>
    sampleTransactionEvent(
      i % 2 ? 'ITI-38' : 'RAD-75',
      i % 3 ? 'responder' : 'requester',
      i % 10 ? 'success' : 'partial',
      i,
    ),
  );
}

function timeRecord(sink: AuditSink, evs: AuditEvent[], batch: number): Promise<number> {
  return (async () => {
    let ns = 0n;
    for (let i = 0; i < evs.length; i += batch) {
      const t0 = process.hrtime.bigint();
      for (let k = i; k < i + batch && k < evs.length; k++) sink.record(evs[k] as AuditEvent);
      ns += process.hrtime.bigint() - t0;
      if ('flush' in sink) await (sink as { flush(): Promise<void> }).flush();
    }
    return Number(ns) / evs.length;
  })();
}

async function requestPath(): Promise<void> {
  const n = smoke ? 5_000 : 100_000;
  const evs = events(n);
  const sink = createAuditSink({
    transport: 'none',
    spoolDir: path.join(tmp, 'rp'),
    source,
    logger: quiet,
    maxPendingEvents: 10_000,
  });
  // Alternating rounds, best round per sink (JIT warm-up and GC noise excluded).
  let noop = Infinity;
  let real = Infinity;
  let writerNs = 0;
  const rounds = 5;
  for (let r = 0; r < rounds; r++) {
    noop = Math.min(noop, await timeRecord(noopAuditSink, evs, 1000));
    const t0 = process.hrtime.bigint();
    real = Math.min(real, await timeRecord(sink, evs, 1000));
    writerNs = Number(process.hrtime.bigint() - t0) / n;
  }
  await sink.close();
  console.log(
    `(a) record() on the request path: ${real.toFixed(0)} ns/call vs no-op sink ${noop.toFixed(1)} ns/call ` +
      `(+${(real - noop).toFixed(0)} ns, ratio ${(real / Math.max(noop, 0.1)).toFixed(1)})`,
  );
  console.log(
    `    off-path writer (build XML + chain + append + fdatasync, batches of 256): ${(writerNs / 1000).toFixed(1)} µs/record ` +
      `→ ${(1e9 / writerNs).toFixed(0)} records/s spooled`,
  );
}

async function delivery(
  name: string,
  port: number,
  count: () => number,
  certs: ReturnType<typeof makeCerts>,
  n: number,
): Promise<void> {
  const sink = createAuditSink({
    transport: 'tls',
    host: '127.0.0.1',
    port,
    tls: {
      cert: certs.certs['gw-audit']!.cert,
      key: certs.certs['gw-audit']!.key,
      ca: certs.ca,
      servername: 'arr',
    },
    spoolDir: path.join(tmp, `deliver-${name}`),
    source,
    ratePerSecond: 1_000_000,
    confirmMs: 200,
    maxPendingEvents: n + 1,
    logger: quiet,
  });
  const evs = events(n);
  const expected = evs.reduce(
    (a, e) => a + (e.kind === 'transaction' && e.transaction === 'RAD-75' ? Math.max(1, e.groups.length) : 1),
    0,
  );
  const base = count();
  const t0 = Date.now();
  for (const e of evs) sink.record(e);
  await waitFor(() => count() - base >= expected, 600_000, `${name} records`);
  const secs = (Date.now() - t0) / 1000;
  await sink.close();
  console.log(
    `(b) ${name}: ${expected} records delivered over TLS in ${secs.toFixed(2)} s → ${(expected / secs).toFixed(0)} records/s (rate cap disabled)`,
  );
}

async function main(): Promise<void> {
  await requestPath();
  const certs = makeCerts(path.join(tmp, 'certs'), ['arr', 'gw-audit']);
  const n = smoke ? 1_000 : 20_000;
  const arr = await startAuditRepository({
    port: 0,
    dir: path.join(tmp, 'arr'),
    tls: { cert: certs.certs.arr!.cert, key: certs.certs.arr!.key, ca: certs.ca },
    logger: quiet,
  });
  await delivery('product ARR', arr.port, () => arr.stats().stored, certs, n);
  await arr.close();
  const bin = findRsyslogd();
  if (bin) {
    const port = await freePort();
    const rs = new RsyslogReceiver(
      path.join(tmp, 'rsyslog'),
      port,
      {
        ca: path.join(tmp, 'certs', 'ca.crt'),
        cert: certs.certs.arr!.certFile,
        key: certs.certs.arr!.keyFile,
      },
      ['gw-audit'],
    );
    await rs.start(bin);
    try {
      await delivery('rsyslogd', port, () => rs.count(), certs, n);
    } finally {
      await rs.stop();
    }
  } else {
    console.log('(b) rsyslogd: not installed, skipped');
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(tmp, { recursive: true, force: true }));
