import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '@xcai/shared/src/audit/cli';
import type { AuditEvent } from '@xcai/shared/src/audit/event';
import { createAuditSink, type AuditLogger } from '@xcai/shared/src/audit/sink';
import {
  listSegments,
  recordHash,
  segmentName,
  Spool,
  verifySpool,
  type SpoolRecord,
} from '@xcai/shared/src/audit/spool';
import { sampleTransactionEvent, waitFor } from '../support/audit';

let tmp: string;
let n = 0;
const newDir = (): string => path.join(tmp, `spool-${++n}`);
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-spool-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const source = { auditSourceId: 'gw-test' };

function captureLogger(): AuditLogger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (msg: string) => lines.push(`${level}: ${msg}`);
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

async function filledSpool(dir: string, count: number, segmentBytes = 4096): Promise<Spool> {
  const s = Spool.open(dir, { segmentBytes, fsync: false });
  for (let i = 0; i < count; i += 5) {
    await s.append(
      Array.from(
        { length: Math.min(5, count - i) },
        (_, k) => `<AuditMessage n="${i + k + 1}">${'x'.repeat(300)}</AuditMessage>`,
      ),
    );
  }
  return s;
}

function lines(dir: string): { file: string; lines: string[] }[] {
  return listSegments(dir).map((s) => {
    const file = path.join(dir, segmentName(s));
    return {
      file,
      lines: fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l),
    };
  });
}

function rewriteRecord(dir: string, seq: number, change: (r: SpoolRecord) => SpoolRecord | undefined): void {
  for (const seg of lines(dir)) {
    const idx = seg.lines.findIndex((l) => (JSON.parse(l) as SpoolRecord).seq === seq);
    if (idx < 0) continue;
    const r = change(JSON.parse(seg.lines[idx]!) as SpoolRecord);
    if (r) seg.lines[idx] = JSON.stringify(r);
    else seg.lines.splice(idx, 1);
    fs.writeFileSync(seg.file, seg.lines.map((l) => `${l}\n`).join(''));
    return;
  }
  throw new Error(`record ${seq} not found`);
}

describe('hash-chained spool', () => {
  test('records are chained across segments and verify', async () => {
    const dir = newDir();
    const s = await filledSpool(dir, 40);
    await s.close();
    expect(listSegments(dir).length).toBeGreaterThan(2);
    const r = verifySpool(dir);
    expect(r).toMatchObject({ ok: true, records: 40, lastSeq: 40 });
    const out: string[] = [];
    expect(main(['verify', dir], (x) => out.push(x))).toBe(0);
    expect(out.join('')).toMatch(/^OK: 40 record\(s\) verified/);
  });

  test('an altered record is detected (first bad record and reason), CLI exits 1', async () => {
    const dir = newDir();
    await (await filledSpool(dir, 20)).close();
    rewriteRecord(dir, 13, (r) => ({ ...r, xml: r.xml.replace('n="13"', 'n="99"') }));
    const r = verifySpool(dir);
    expect(r).toMatchObject({ ok: false, records: 12, firstBadRecord: 13 });
    expect(r.reason).toMatch(/hash mismatch/);
    const out: string[] = [];
    expect(main(['verify', dir], (x) => out.push(x))).toBe(1);
    expect(out.join('')).toMatch(/TAMPERED OR DAMAGED: record 13/);
  });

  test('a forged record with a recomputed hash breaks the link to the next record', async () => {
    const dir = newDir();
    await (await filledSpool(dir, 20)).close();
    rewriteRecord(dir, 7, (r) => {
      const xml = '<AuditMessage forged="1"/>';
      return { ...r, xml, hash: recordHash(r.prev, r.seq, r.id, r.time, xml) };
    });
    expect(verifySpool(dir)).toMatchObject({
      ok: false,
      firstBadRecord: 8,
      reason: expect.stringMatching(/chain broken/),
    });
  });

  test('a deleted record is detected as a sequence break', async () => {
    const dir = newDir();
    await (await filledSpool(dir, 20)).close();
    rewriteRecord(dir, 7, () => undefined);
    expect(verifySpool(dir)).toMatchObject({
      ok: false,
      firstBadRecord: 7,
      reason: expect.stringMatching(/sequence break/),
    });
    rewriteRecord(dir, 5, () => undefined); // last of its segment
    expect(verifySpool(dir)).toMatchObject({
      ok: false,
      firstBadRecord: 5,
      reason: expect.stringMatching(/missing/),
    });
  });

  test('a deleted segment and a cut tail below the delivery cursor are detected', async () => {
    const dir = newDir();
    const s = await filledSpool(dir, 30);
    s.markDelivered(30);
    await s.close();
    const segs = listSegments(dir);
    fs.rmSync(path.join(dir, segmentName(segs[1]!)));
    expect(verifySpool(dir)).toMatchObject({
      ok: false,
      firstBadRecord: segs[1],
      reason: expect.stringMatching(/missing/),
    });

    const dir2 = newDir();
    const s2 = await filledSpool(dir2, 30);
    s2.markDelivered(30);
    await s2.close();
    const last = listSegments(dir2).pop()!;
    fs.rmSync(path.join(dir2, segmentName(last)));
    expect(verifySpool(dir2)).toMatchObject({ ok: false, reason: expect.stringMatching(/delivery cursor/) });
  });

  test('a torn write is reported by verify and cut at the next open', async () => {
    const dir = newDir();
    await (await filledSpool(dir, 10, 1 << 20)).close();
    fs.appendFileSync(path.join(dir, segmentName(1)), '{"seq":11,"id":"x","ti');
    expect(verifySpool(dir)).toMatchObject({
      ok: false,
      firstBadRecord: 11,
      reason: expect.stringMatching(/torn/),
    });
    const warnings: string[] = [];
    const s = Spool.open(dir, { onWarning: (m) => warnings.push(m) });
    expect(warnings.join()).toMatch(/torn write/);
    expect(s.lastSeq).toBe(10);
    await s.append(['<AuditMessage n="11"/>']);
    await s.close();
    expect(verifySpool(dir)).toMatchObject({ ok: true, records: 11 });
  });

  test('retention removes delivered segments only, keeps an anchor, and the chain still verifies', async () => {
    const dir = newDir();
    const s = Spool.open(dir, { segmentBytes: 4096, fsync: false, retainBytes: 5000 });
    for (let i = 0; i < 8; i++)
      await s.append(Array.from({ length: 5 }, () => `<AuditMessage>${'y'.repeat(300)}</AuditMessage>`));
    const before = listSegments(dir);
    expect(await s.purge()).toBe(0); // nothing delivered yet
    s.markDelivered(25);
    const removed = await s.purge();
    expect(removed).toBeGreaterThan(0);
    const after = listSegments(dir);
    expect(after.length).toBe(before.length - removed);
    expect(after[0]!).toBeLessThanOrEqual(26);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'anchor.json'), 'utf8')).seq).toBe(after[0]! - 1);
    await s.close();
    expect(verifySpool(dir)).toMatchObject({ ok: true, lastSeq: 40 });
  });

  test('one process per spool directory', async () => {
    const dir = newDir();
    const s = Spool.open(dir);
    expect(() => Spool.open(dir)).toThrow(/in use/);
    await s.close();
    const again = Spool.open(dir);
    await again.close();
  });
});

describe('audit sink (spool side)', () => {
  test('record() never throws and never blocks; records are spooled in order', async () => {
    const dir = newDir();
    const logger = captureLogger();
    const sink = createAuditSink({ transport: 'none', spoolDir: dir, source, logger });
    const events = Array.from({ length: 50 }, (_, i) =>
      sampleTransactionEvent('ITI-18', 'responder', 'success', i + 1),
    );
    for (const e of events) expect(sink.record(e)).toBeUndefined();
    expect(() =>
      sink.record({ kind: 'transaction', transaction: 'XX-1' } as unknown as AuditEvent),
    ).not.toThrow();
    expect(() => sink.record(null as unknown as AuditEvent)).not.toThrow();
    await sink.flush();
    expect(sink.metrics()).toMatchObject({ written: 50, buildErrors: 2, refused: 0, healthy: true });
    await sink.close();
    const recs = lines(dir).flatMap((s) => s.lines.map((l) => JSON.parse(l) as SpoolRecord));
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(recs.map((r) => r.xml.match(/dr-(\d+)@/)![1])).toEqual(events.map((_, i) => String(i + 1)));
    expect(new Set(recs.map((r) => r.id)).size).toBe(50);
    expect(verifySpool(dir).ok).toBe(true);
  });

  test('full spool: alarm at 80 %, then records refused and the sink unhealthy (fail closed); recovers when drained', async () => {
    const dir = newDir();
    const logger = captureLogger();
    const metrics: boolean[] = [];
    // tls towards a port nobody listens on: nothing is delivered, the spool fills up.
    const sink = createAuditSink({
      transport: 'tls',
      host: '127.0.0.1',
      port: 9,
      tls: { cert: 'x', key: 'x', ca: 'x' },
      spoolDir: dir,
      source,
      maxSpoolBytes: 20_000,
      logger,
      backoffInitialMs: 50,
      backoffMaxMs: 200,
      closeTimeoutMs: 200,
      onMetrics: (m) => metrics.push(m.healthy),
    });
    expect(sink.healthy()).toBe(true);
    let i = 0;
    while (sink.healthy() && i < 100) {
      sink.record(sampleTransactionEvent('ITI-43', 'responder', 'success', ++i));
      await sink.flush();
    }
    expect(sink.healthy()).toBe(false);
    expect(sink.metrics().full).toBe(true);
    expect(sink.bytes()).toBeGreaterThanOrEqual(20_000);
    const depth = sink.depth();
    sink.record(sampleTransactionEvent('ITI-43', 'responder', 'success', 999));
    await sink.flush();
    expect(sink.depth()).toBe(depth);
    expect(sink.metrics().refused).toBe(1);
    expect(logger.lines.join('\n')).toMatch(/warn: audit: spool \d+% full/);
    expect(logger.lines.join('\n')).toMatch(/error: audit: spool FULL/);
    expect(logger.lines.join('\n')).toMatch(/REFUSED/);
    expect(logger.lines.join('\n')).toMatch(/cannot connect/);
    await waitFor(() => metrics.includes(false), 2000, 'metrics callback');
    await sink.close();
    // Nothing was lost: every accepted record is spooled and verifies.
    expect(verifySpool(dir)).toMatchObject({ ok: true, records: depth });
    // Restart spool-only: records count as delivered, the spool is no longer full.
    const again = createAuditSink({
      transport: 'none',
      spoolDir: dir,
      source,
      maxSpoolBytes: 20_000,
      logger,
    });
    expect(again.healthy()).toBe(true);
    await again.close();
  });

  test('the in-memory queue is bounded: beyond it records are refused synchronously', async () => {
    const dir = newDir();
    const sink = createAuditSink({
      transport: 'none',
      spoolDir: dir,
      source,
      maxPendingEvents: 10,
      logger: captureLogger(),
    });
    for (let i = 0; i < 15; i++) sink.record(sampleTransactionEvent('ITI-18', 'requester', 'success', i));
    expect(sink.healthy()).toBe(false);
    expect(sink.metrics().refused).toBe(5);
    await sink.flush();
    expect(sink.healthy()).toBe(true);
    await sink.close();
    expect(verifySpool(dir).records).toBe(10);
  });
});
