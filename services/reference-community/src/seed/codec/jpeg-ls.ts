/**
 * JPEG-LS Lossless Image Compression: DICOM transfer syntax 1.2.840.10008.1.2.4.80 (PS3.5 A.4.3; ITU-T
 * T.87 / ISO 14495-1). One grey-scale component, NEAR = 0 (lossless), the default thresholds and RESET
 * (so no LSE segment), regular mode with context modelling and limited-length Golomb codes, run mode
 * with run interruption samples — T.87 Annex A, with the edge samples and the order of the run-index
 * update as the CharLS reference implementation has them (what dcmtk's dcmdjpls decodes).
 */
import { markerSegment as segment } from './markers';

const J = [
  0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15,
];
const MIN_C = -128;
const MAX_C = 127;
const RESET = 64;

/** JPEG-LS bit writer: MSB first; after a 0xFF byte the next byte carries 7 bits (T.87 A.1). */
class LsBits {
  private readonly out: number[] = [];
  private acc = 0;
  private n = 0;
  private room = 8;

  put(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) this.bit((value >>> i) & 1);
  }

  zeros(count: number): void {
    for (let i = 0; i < count; i++) this.bit(0);
  }

  bit(b: number): void {
    this.acc = (this.acc << 1) | b;
    if (++this.n === this.room) {
      this.out.push(this.acc);
      this.room = this.acc === 0xff ? 7 : 8;
      this.acc = 0;
      this.n = 0;
    }
  }

  finish(): Buffer {
    if (this.n > 0) this.zeros(this.room - this.n);
    if (this.room === 7) this.out.push(0x00); // a 0xFF ends the data: its stuffed byte keeps it data
    return Buffer.from(this.out);
  }
}

interface Parameters {
  maxval: number;
  range: number;
  qbpp: number;
  limit: number;
  t1: number;
  t2: number;
  t3: number;
}

/** Default coding parameters for NEAR = 0 and MAXVAL ≥ 128 (T.87 C.2.4.1.1). */
function parameters(precision: number): Parameters {
  const maxval = (1 << precision) - 1;
  const range = maxval + 1;
  const bpp = Math.max(2, precision);
  const qbpp = precision;
  const clamp = (v: number, lo: number) => (v > maxval || v < lo ? lo : v);
  const factor = Math.floor((Math.min(maxval, 4095) + 128) / 256);
  const t1 = clamp(factor * (3 - 2) + 2, 1);
  const t2 = clamp(factor * (7 - 3) + 3, t1);
  const t3 = clamp(factor * (21 - 4) + 4, t2);
  return { maxval, range, qbpp, limit: 2 * (bpp + Math.max(8, bpp)), t1, t2, t3 };
}

class Encoder {
  private readonly a: Int32Array;
  private readonly b = new Int32Array(367);
  private readonly c = new Int32Array(365);
  private readonly n = new Int32Array(367);
  /** Run interruption contexts 365 (RItype 0) and 366 (RItype 1): negative error counts. */
  private readonly nn = new Int32Array(367);
  private runIndex = 0;

  constructor(
    private readonly p: Parameters,
    readonly bits: LsBits,
  ) {
    this.a = new Int32Array(367).fill(Math.max(2, (p.range + 32) >> 6));
    this.n.fill(1);
  }

  quantize(d: number): number {
    const { t1, t2, t3 } = this.p;
    if (d <= -t3) return -4;
    if (d <= -t2) return -3;
    if (d <= -t1) return -2;
    if (d < 0) return -1;
    if (d === 0) return 0;
    if (d < t1) return 1;
    if (d < t2) return 2;
    if (d < t3) return 3;
    return 4;
  }

  private reduce(e: number): number {
    if (e < 0) e += this.p.range;
    if (e >= (this.p.range + 1) >> 1) e -= this.p.range;
    return e;
  }

  private golomb(k: number, mapped: number, limit: number): void {
    const high = mapped >>> k;
    if (high < limit - this.p.qbpp - 1) {
      this.bits.zeros(high);
      this.bits.bit(1);
      if (k > 0) this.bits.put(mapped & ((1 << k) - 1), k);
    } else {
      this.bits.zeros(limit - this.p.qbpp - 1);
      this.bits.bit(1);
      this.bits.put(mapped - 1, this.p.qbpp);
    }
  }

  /** Regular mode (T.87 A.4–A.6) for context `qs` ≠ 0. */
  regular(qs: number, x: number, ra: number, rb: number, rc: number): void {
    const sign = qs < 0 ? -1 : 1;
    const q = qs * sign;
    let k = 0;
    while (this.n[q] << k < this.a[q]) k++;
    const med =
      rc >= Math.max(ra, rb) ? Math.min(ra, rb) : rc <= Math.min(ra, rb) ? Math.max(ra, rb) : ra + rb - rc;
    const px = Math.min(this.p.maxval, Math.max(0, med + sign * this.c[q]));
    const err = this.reduce(sign * (x - px));
    const corrected = k === 0 && 2 * this.b[q] <= -this.n[q];
    const mapped = corrected ? (err >= 0 ? 2 * err + 1 : -2 * (err + 1)) : err >= 0 ? 2 * err : -2 * err - 1;
    this.golomb(k, mapped, this.p.limit);
    this.b[q] += err;
    this.a[q] += Math.abs(err);
    if (this.n[q] === RESET) {
      this.a[q] >>= 1;
      this.b[q] = this.b[q] >= 0 ? this.b[q] >> 1 : -((1 - this.b[q]) >> 1);
      this.n[q] >>= 1;
    }
    this.n[q]++;
    if (this.b[q] <= -this.n[q]) {
      this.b[q] += this.n[q];
      if (this.c[q] > MIN_C) this.c[q]--;
      if (this.b[q] <= -this.n[q]) this.b[q] = -this.n[q] + 1;
    } else if (this.b[q] > 0) {
      this.b[q] -= this.n[q];
      if (this.c[q] < MAX_C) this.c[q]++;
      if (this.b[q] > 0) this.b[q] = 0;
    }
  }

  /** A run of `length` samples equal to Ra; `endOfLine` when it reached the end of the line (A.7.1). */
  run(length: number, endOfLine: boolean): void {
    while (length >= 1 << J[this.runIndex]) {
      this.bits.bit(1);
      length -= 1 << J[this.runIndex];
      if (this.runIndex < 31) this.runIndex++;
    }
    if (endOfLine) {
      if (length > 0) this.bits.bit(1);
    } else {
      this.bits.bit(0);
      this.bits.put(length, J[this.runIndex]);
    }
  }

  /** The sample that interrupted a run (A.7.2); the run index steps back afterwards. */
  interruption(x: number, ra: number, rb: number): void {
    const riType = ra === rb ? 1 : 0;
    const q = 365 + riType;
    const err = this.reduce(riType ? x - ra : (x - rb) * (rb < ra ? -1 : 1));
    const temp = riType ? this.a[q] + (this.n[q] >> 1) : this.a[q];
    let k = 0;
    while (this.n[q] << k < temp) k++;
    const map =
      (k === 0 && err > 0 && 2 * this.nn[q] < this.n[q]) ||
      (err < 0 && 2 * this.nn[q] >= this.n[q]) ||
      (err < 0 && k !== 0)
        ? 1
        : 0;
    const mapped = 2 * Math.abs(err) - riType - map;
    this.golomb(k, mapped, this.p.limit - J[this.runIndex] - 1);
    if (err < 0) this.nn[q]++;
    this.a[q] += (mapped + 1 - riType) >> 1;
    if (this.n[q] === RESET) {
      this.a[q] >>= 1;
      this.n[q] >>= 1;
      this.nn[q] >>= 1;
    }
    this.n[q]++;
    if (this.runIndex > 0) this.runIndex--;
  }
}

/** Encodes `samples` (row-major, each < 2^precision) as a lossless JPEG-LS bitstream, SOI to EOI. */
export function encodeJpegLs(samples: Uint16Array, rows: number, columns: number, precision: number): Buffer {
  if (precision < 8 || precision > 16) throw new Error(`JPEG-LS precision 8…16 here, not ${precision}`);
  const enc = new Encoder(parameters(precision), new LsBits());
  // line buffers with one sample of margin on each side: index 0 is x = -1
  let prev = new Int32Array(columns + 2);
  let cur = new Int32Array(columns + 2);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) cur[x + 1] = samples[y * columns + x];
    prev[columns + 1] = prev[columns];
    cur[0] = prev[1];
    let x = 0;
    while (x < columns) {
      const ra = cur[x];
      const rb = prev[x + 1];
      const rc = prev[x];
      const rd = prev[x + 2];
      const qs = (enc.quantize(rd - rb) * 9 + enc.quantize(rb - rc)) * 9 + enc.quantize(rc - ra);
      if (qs !== 0) {
        enc.regular(qs, cur[x + 1], ra, rb, rc);
        x++;
        continue;
      }
      let length = 0;
      while (x + length < columns && cur[x + 1 + length] === ra) length++;
      const endOfLine = x + length === columns;
      enc.run(length, endOfLine);
      x += length;
      if (!endOfLine) {
        enc.interruption(cur[x + 1], ra, prev[x + 1]);
        x++;
      }
    }
    [prev, cur] = [cur, prev];
  }
  const entropy = enc.bits.finish();
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    // SOF55: precision, lines, samples per line, one component, no subsampling
    segment(0xfff7, [precision, rows >> 8, rows & 0xff, columns >> 8, columns & 0xff, 1, 1, 0x11, 0]),
    // SOS: component 1, no mapping table, NEAR = 0, ILV = 0 (non-interleaved), point transform 0
    segment(0xffda, [1, 1, 0, 0, 0, 0]),
    entropy,
    Buffer.from([0xff, 0xd9]),
  ]);
}
