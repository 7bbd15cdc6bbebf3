/**
 * Durable, hash-chained, append-only audit spool on local disk.
 *
 * Layout of a spool directory (mode 0700, files 0600):
 *   seg-<first seq, 16 digits>.jsonl  records, one JSON object per line, in seq order
 *   cursor.json                       {"seq":N}  last record confirmed delivered to the ARR
 *   anchor.json                       {"seq":N,"hash":H} last record removed by retention (chain anchor)
 *   spool.lock                        pid of the process that owns the spool
 *
 * Record line: {"seq":N,"id":UUID,"time":ISO,"prev":H(N-1),"hash":H(N),"xml":"<AuditMessage…"}
 * with H(N) = SHA-256 hex of `${prev}\n${seq}\n${id}\n${time}\n${xml}` and H(0) = 64 × "0".
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const GENESIS_HASH = '0'.repeat(64);
const SEGMENT_RE = /^seg-(\d{16})\.jsonl$/;
const CHUNK = 1 << 20;
/** Spool directories locked by this process. */
const LOCKED = new Set<string>();

export interface SpoolRecord {
  seq: number;
  id: string;
  time: string;
  prev: string;
  hash: string;
  xml: string;
}

export function recordHash(prev: string, seq: number, id: string, time: string, xml: string): string {
  return createHash('sha256').update(`${prev}\n${seq}\n${id}\n${time}\n${xml}`, 'utf8').digest('hex');
}

export function segmentName(firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(16, '0')}.jsonl`;
}

export function listSegments(dir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => SEGMENT_RE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Calls `onLine(line, endOffset)` for each complete line; returns the offset after the last one. */
export function forEachLineSync(file: string, onLine: (line: string, end: number) => void | false): number {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry = Buffer.alloc(0);
    let pos = 0;
    let consumed = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, pos);
      if (n === 0) break;
      pos += n;
      let data = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let start = 0;
      for (;;) {
        const nl = data.indexOf(0x0a, start);
        if (nl < 0) break;
        consumed += nl + 1 - start;
        if (onLine(data.subarray(start, nl).toString('utf8'), consumed) === false) return consumed;
        start = nl + 1;
      }
      data = data.subarray(start);
      carry = Buffer.from(data);
    }
    return consumed;
  } finally {
    fs.closeSync(fd);
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function writeJsonAtomicSync(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  const fd = fs.openSync(tmp, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(value));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
}

function parseRecord(line: string): SpoolRecord | undefined {
  try {
    const r = JSON.parse(line) as SpoolRecord;
    if (typeof r.seq !== 'number' || typeof r.hash !== 'string' || typeof r.xml !== 'string')
      return undefined;
    return r;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SpoolOptions {
  /** Start a new segment file when the current one would exceed this size. Default 8 MiB. */
  segmentBytes?: number;
  /** fdatasync each written batch (group commit). Default true. */
  fsync?: boolean;
  /** Retention of delivered segments: total bytes kept. Default 1 GiB. */
  retainBytes?: number;
  /** Retention of delivered segments: age in ms (by last write). Default 5 years (R17). */
  retainMs?: number;
  /** Called when recovery had to cut a torn tail (crash during a write). */
  onWarning?: (msg: string) => void;
}

/** Owns one spool directory (single writer, enforced by spool.lock). */
export class Spool {
  readonly dir: string;
  /** Segment start seqs, ascending. */
  segments: number[] = [];
  lastSeq = 0;
  lastHash = GENESIS_HASH;
  /** Last seq confirmed delivered (persisted lazily in cursor.json). */
  delivered = 0;
  /** Bytes of the records after `delivered` (what the full-spool bound applies to). */
  undeliveredBytes = 0;
  /** Incremented when a failed write was rolled back (readers must re-seek). */
  generation = 0;

  private sizes: number[] = [];
  private sizesHead = 0;
  private fd: number | undefined;
  private currentSize = 0;
  private persistedCursor = 0;
  private readonly opts: Required<Omit<SpoolOptions, 'onWarning'>> & Pick<SpoolOptions, 'onWarning'>;
  private closed = false;

  private constructor(dir: string, opts: SpoolOptions) {
    this.dir = dir;
    this.opts = {
      segmentBytes: opts.segmentBytes ?? 8 * 1024 * 1024,
      fsync: opts.fsync ?? true,
      retainBytes: opts.retainBytes ?? 1024 * 1024 * 1024,
      retainMs: opts.retainMs ?? 5 * 366 * 24 * 3600 * 1000,
      onWarning: opts.onWarning,
    };
  }

  /** Opens (creating if needed) and recovers a spool. Synchronous: call at start-up only. */
  static open(dir: string, opts: SpoolOptions = {}): Spool {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const s = new Spool(dir, opts);
    s.lock();
    try {
      s.recover();
    } catch (err) {
      s.unlock();
      throw err;
    }
    return s;
  }

  private lock(): void {
    const file = path.join(this.dir, 'spool.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
        LOCKED.add(path.resolve(this.dir));
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number(fs.readFileSync(file, 'utf8').trim());
        const inUse = pid === process.pid ? LOCKED.has(path.resolve(this.dir)) : pid > 0 && pidAlive(pid);
        if (inUse) throw new Error(`audit spool ${this.dir} is in use by process ${pid}`, { cause: err });
        fs.rmSync(file, { force: true });
      }
    }
    throw new Error(`cannot lock audit spool ${this.dir}`);
  }

  private unlock(): void {
    LOCKED.delete(path.resolve(this.dir));
    fs.rmSync(path.join(this.dir, 'spool.lock'), { force: true });
  }

  private file(start: number): string {
    return path.join(this.dir, segmentName(start));
  }

  private recover(): void {
    const anchor = readJson<{ seq: number; hash: string }>(path.join(this.dir, 'anchor.json'));
    this.lastSeq = anchor?.seq ?? 0;
    this.lastHash = anchor?.hash ?? GENESIS_HASH;
    this.segments = listSegments(this.dir);
    // Find the last record; cut a torn tail; drop empty trailing segments.
    while (this.segments.length > 0) {
      const start = this.segments[this.segments.length - 1] as number;
      const file = this.file(start);
      let last: SpoolRecord | undefined;
      let goodEnd = 0;
      forEachLineSync(file, (line, end) => {
        const r = parseRecord(line);
        if (!r) return false;
        last = r;
        goodEnd = end;
      });
      const size = fs.statSync(file).size;
      if (goodEnd < size) {
        this.opts.onWarning?.(
          `audit spool: cut ${size - goodEnd} bytes of a torn write at the end of ${file}`,
        );
        fs.truncateSync(file, goodEnd);
      }
      if (last) {
        this.lastSeq = last.seq;
        this.lastHash = last.hash;
        this.currentSize = goodEnd;
        break;
      }
      fs.rmSync(file);
      this.segments.pop();
      this.currentSize = 0;
    }
    if (this.segments.length > 0 && anchor === undefined && (this.segments[0] as number) > 1) {
      // Head removed without an anchor: keep working, verifySpool reports it.
      this.opts.onWarning?.(`audit spool: chain head missing in ${this.dir}`);
    }
    const cursor = readJson<{ seq: number }>(path.join(this.dir, 'cursor.json'));
    this.delivered = Math.min(Math.max(cursor?.seq ?? 0, anchor?.seq ?? 0), this.lastSeq);
    this.persistedCursor = this.delivered;
    // Sizes of the undelivered records.
    for (let i = 0; i < this.segments.length; i++) {
      const start = this.segments[i] as number;
      const next = this.segments[i + 1];
      if (next !== undefined && next - 1 <= this.delivered) continue;
      let prevEnd = 0;
      forEachLineSync(this.file(start), (line, end) => {
        const r = parseRecord(line);
        if (r && r.seq > this.delivered) {
          this.sizes.push(end - prevEnd);
          this.undeliveredBytes += end - prevEnd;
        }
        prevEnd = end;
      });
    }
  }

  /** Number of records written and not yet confirmed delivered. */
  depth(): number {
    return this.lastSeq - this.delivered;
  }

  /**
   * Appends records (hash-chained) and makes them durable. Must not be called concurrently
   * (the sink serialises calls). On failure nothing of the batch remains on disk.
   */
  async append(xmls: string[], now = new Date()): Promise<SpoolRecord[]> {
    if (this.closed) throw new Error('audit spool closed');
    const time = now.toISOString();
    const records: SpoolRecord[] = [];
    const lines: Buffer[] = [];
    let seq = this.lastSeq;
    let prev = this.lastHash;
    let bytes = 0;
    for (const xml of xmls) {
      seq++;
      const id = randomUUID();
      const hash = recordHash(prev, seq, id, time, xml);
      const rec: SpoolRecord = { seq, id, time, prev, hash, xml };
      const line = Buffer.from(`${JSON.stringify(rec)}\n`, 'utf8');
      records.push(rec);
      lines.push(line);
      bytes += line.length;
      prev = hash;
    }
    if (records.length === 0) return records;
    if (this.fd === undefined) {
      const current = this.segments[this.segments.length - 1];
      if (current !== undefined && this.currentSize + bytes <= this.opts.segmentBytes) {
        this.fd = fs.openSync(this.file(current), 'a', 0o600);
      } else {
        this.newSegment(this.lastSeq + 1);
      }
    } else if (this.currentSize > 0 && this.currentSize + bytes > this.opts.segmentBytes) {
      fs.closeSync(this.fd);
      this.fd = undefined;
      this.newSegment(this.lastSeq + 1);
    }
    const fd = this.fd as number;
    const before = this.currentSize;
    try {
      const buf = Buffer.concat(lines, bytes);
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await new Promise<{ bytesWritten: number }>((resolve, reject) =>
          fs.write(fd, buf, off, buf.length - off, null, (err, n) =>
            err ? reject(err) : resolve({ bytesWritten: n }),
          ),
        );
        off += bytesWritten;
      }
      if (this.opts.fsync) {
        await new Promise<void>((resolve, reject) =>
          fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())),
        );
      }
    } catch (err) {
      try {
        fs.ftruncateSync(fd, before);
      } catch {
        // the torn tail is cut at the next start-up
      }
      this.generation++;
      throw err;
    }
    this.currentSize += bytes;
    this.lastSeq = seq;
    this.lastHash = prev;
    for (const l of lines) this.sizes.push(l.length);
    this.undeliveredBytes += bytes;
    return records;
  }

  private newSegment(firstSeq: number): void {
    this.fd = fs.openSync(this.file(firstSeq), 'a', 0o600);
    this.segments.push(firstSeq);
    this.currentSize = 0;
    this.syncDir();
  }

  private syncDir(): void {
    try {
      const dfd = fs.openSync(this.dir, 'r');
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch {
      // not supported on every platform
    }
  }

  /** Marks records up to `seq` delivered (cursor persisted by persistCursor). */
  markDelivered(seq: number): void {
    if (seq <= this.delivered) return;
    const upTo = Math.min(seq, this.lastSeq);
    for (let s = this.delivered; s < upTo; s++) {
      const size = this.sizes[this.sizesHead++] ?? 0;
      this.undeliveredBytes -= size;
    }
    if (this.sizesHead > 4096 && this.sizesHead * 2 > this.sizes.length) {
      this.sizes = this.sizes.slice(this.sizesHead);
      this.sizesHead = 0;
    }
    this.delivered = upTo;
    if (this.undeliveredBytes < 0) this.undeliveredBytes = 0;
  }

  /** Writes cursor.json if the delivered seq moved. */
  async persistCursor(): Promise<void> {
    if (this.delivered === this.persistedCursor) return;
    const seq = this.delivered;
    await writeJsonAtomic(path.join(this.dir, 'cursor.json'), { seq });
    this.persistedCursor = Math.max(this.persistedCursor, seq);
  }

  /** First segment start to read `seq` from. */
  segmentFor(seq: number): number | undefined {
    let found: number | undefined;
    for (const s of this.segments) {
      if (s <= seq) found = s;
      else break;
    }
    return found ?? this.segments[0];
  }

  segmentAfter(start: number): number | undefined {
    return this.segments.find((s) => s > start);
  }

  segmentPath(start: number): string {
    return this.file(start);
  }

  /** Bytes held in fully delivered segments (kept for the local report until retention). */
  retainedBytes(): number {
    let total = 0;
    for (let i = 0; i + 1 < this.segments.length; i++) {
      const next = this.segments[i + 1] as number;
      if (next - 1 > this.delivered) break;
      try {
        total += fs.statSync(this.file(this.segments[i] as number)).size;
      } catch {
        // removed meanwhile
      }
    }
    return total;
  }

  /**
   * Retention: removes the oldest fully delivered segments while the delivered bytes exceed
   * retainBytes or the segment's last write is older than retainMs. The hash of the last removed
   * record is kept in anchor.json so the chain still verifies from there.
   */
  async purge(now = Date.now()): Promise<number> {
    let removed = 0;
    for (;;) {
      if (this.segments.length < 2) break;
      const start = this.segments[0] as number;
      const next = this.segments[1] as number;
      if (next - 1 > this.delivered) break;
      const file = this.file(start);
      const st = await fs.promises.stat(file);
      const tooOld = now - st.mtimeMs > this.opts.retainMs;
      const tooBig = this.retainedBytes() > this.opts.retainBytes;
      if (!tooOld && !tooBig) break;
      let last: SpoolRecord | undefined;
      forEachLineSync(file, (line) => {
        last = parseRecord(line) ?? last;
      });
      if (last) await writeJsonAtomic(path.join(this.dir, 'anchor.json'), { seq: last.seq, hash: last.hash });
      await fs.promises.rm(file, { force: true });
      this.segments.shift();
      removed++;
    }
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.persistCursor().catch(() => undefined);
    this.closed = true;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    this.unlock();
  }

  /** Synchronous last-resort cursor write (process exit). */
  persistCursorSync(): void {
    if (this.delivered !== this.persistedCursor) {
      writeJsonAtomicSync(path.join(this.dir, 'cursor.json'), { seq: this.delivered });
      this.persistedCursor = this.delivered;
    }
  }
}

/** Sequential reader over the spool from a given seq (used by the sender). */
export class SpoolReader {
  private seg: number | undefined;
  private fh: fs.promises.FileHandle | undefined;
  private offset = 0;
  private carry = Buffer.alloc(0);
  private queue: SpoolRecord[] = [];
  private next = 1;
  private generation: number;
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  constructor(private readonly spool: Spool) {
    this.generation = spool.generation;
  }

  async seek(seq: number): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    this.seg = this.spool.segmentFor(seq);
    this.offset = 0;
    this.carry = Buffer.alloc(0);
    this.queue = [];
    this.next = seq;
    this.generation = this.spool.generation;
  }

  /** Seq of the next record `read` will return. */
  position(): number {
    return this.queue[0]?.seq ?? this.next;
  }

  /** Moves complete lines of records already durable from `carry` to `queue`. */
  private parseCarry(): void {
    let start = 0;
    for (;;) {
      const nl = this.carry.indexOf(0x0a, start);
      if (nl < 0) break;
      const r = parseRecord(this.carry.subarray(start, nl).toString('utf8'));
      if (r && r.seq > this.spool.lastSeq) break; // written but not yet confirmed durable
      start = nl + 1;
      if (!r) continue;
      const last = this.queue[this.queue.length - 1];
      if (r.seq >= (last ? last.seq + 1 : this.next)) this.queue.push(r);
    }
    if (start > 0) this.carry = Buffer.from(this.carry.subarray(start));
  }

  /** Up to `max` durable records in order; [] when caught up. */
  async read(max: number): Promise<SpoolRecord[]> {
    if (this.generation !== this.spool.generation) await this.seek(this.position());
    for (;;) {
      this.parseCarry();
      if (this.queue.length >= max) break;
      const last = this.queue[this.queue.length - 1];
      if ((last ? last.seq + 1 : this.next) > this.spool.lastSeq) break;
      if (this.seg === undefined) {
        this.seg = this.spool.segmentFor(this.next);
        if (this.seg === undefined) break;
      }
      if (!this.fh) {
        try {
          this.fh = await fs.promises.open(this.spool.segmentPath(this.seg), 'r');
        } catch {
          const after = this.spool.segmentAfter(this.seg);
          if (after === undefined) break;
          this.seg = after;
          this.offset = 0;
          this.carry = Buffer.alloc(0);
          continue;
        }
      }
      const { bytesRead } = await this.fh.read(this.buf, 0, CHUNK, this.offset);
      if (bytesRead === 0) {
        const after = this.spool.segmentAfter(this.seg);
        if (after === undefined) break;
        await this.fh.close().catch(() => undefined);
        this.fh = undefined;
        this.seg = after;
        this.offset = 0;
        this.carry = Buffer.alloc(0);
        continue;
      }
      this.offset += bytesRead;
      this.carry = Buffer.concat([this.carry, this.buf.subarray(0, bytesRead)]);
    }
    const out = this.queue.splice(0, max);
    if (out.length) this.next = (out[out.length - 1] as SpoolRecord).seq + 1;
    return out;
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
  }
}

export interface VerifyResult {
  ok: boolean;
  /** Records whose chain link verified. */
  records: number;
  /** Seq of the first record that failed (or the first missing seq). */
  firstBadRecord?: number;
  reason?: string;
  /** File where the failure was found. */
  file?: string;
  /** Hash of the last verified record (compare with the ARR copy or an external anchor). */
  lastHash?: string;
  lastSeq?: number;
}

/**
 * Verifies the hash chain of a spool directory: seq continuity across segment files, each
 * record's prev = hash of the one before (or the retention anchor), each hash recomputed, no
 * torn/garbage lines, and no records missing below the delivery cursor.
 */
export function verifySpool(dir: string): VerifyResult {
  const anchor = readJson<{ seq: number; hash: string }>(path.join(dir, 'anchor.json'));
  const cursor = readJson<{ seq: number }>(path.join(dir, 'cursor.json'));
  const segments = listSegments(dir);
  let expectSeq = (anchor?.seq ?? 0) + 1;
  let prev = anchor?.hash ?? GENESIS_HASH;
  let records = 0;
  let bad: VerifyResult | undefined;
  if (!fs.existsSync(dir)) return { ok: false, records: 0, reason: `no such directory ${dir}` };
  for (const start of segments) {
    const file = path.join(dir, segmentName(start));
    if (start !== expectSeq) {
      return {
        ok: false,
        records,
        firstBadRecord: expectSeq,
        reason:
          start > expectSeq
            ? `records ${expectSeq}..${start - 1} missing (segment ${segmentName(start)} starts at ${start})`
            : `segment ${segmentName(start)} overlaps (expected record ${expectSeq})`,
        file,
        lastHash: prev,
        lastSeq: expectSeq - 1,
      };
    }
    const end = forEachLineSync(file, (line) => {
      const fail = (reason: string): false => {
        bad = {
          ok: false,
          records,
          firstBadRecord: expectSeq,
          reason,
          file,
          lastHash: prev,
          lastSeq: expectSeq - 1,
        };
        return false;
      };
      let r: SpoolRecord;
      try {
        r = JSON.parse(line) as SpoolRecord;
      } catch {
        return fail('unparsable record line');
      }
      if (typeof r !== 'object' || r === null) return fail('unparsable record line');
      if (r.seq !== expectSeq) return fail(`sequence break: found record ${String(r.seq)}`);
      if (typeof r.id !== 'string' || !r.id) return fail('record id missing');
      if (r.prev !== prev) return fail('chain broken: prev does not match the hash of the previous record');
      if (typeof r.xml !== 'string' || typeof r.time !== 'string') return fail('record fields missing');
      if (recordHash(r.prev, r.seq, r.id, r.time, r.xml) !== r.hash)
        return fail('record hash mismatch (content altered)');
      records++;
      expectSeq++;
      prev = r.hash;
    });
    if (bad) return bad;
    const size = fs.statSync(file).size;
    if (end < size) {
      return {
        ok: false,
        records,
        firstBadRecord: expectSeq,
        reason: 'torn or extra data after the last complete record',
        file,
        lastHash: prev,
        lastSeq: expectSeq - 1,
      };
    }
  }
  if (cursor && cursor.seq > expectSeq - 1) {
    return {
      ok: false,
      records,
      firstBadRecord: expectSeq,
      reason: `records ${expectSeq}..${cursor.seq} missing (delivery cursor is at ${cursor.seq})`,
      lastHash: prev,
      lastSeq: expectSeq - 1,
    };
  }
  return { ok: true, records, lastHash: prev, lastSeq: expectSeq - 1 };
}
