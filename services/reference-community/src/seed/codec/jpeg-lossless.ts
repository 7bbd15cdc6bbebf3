/**
 * JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection Value 1): DICOM
 * transfer syntax 1.2.840.10008.1.2.4.70 (PS3.5 A.4.1; ITU-T T.81 Annex H). One grey-scale component,
 * predictor 1 (the sample to the left; the one above at the start of a row; 2^(P-1) for the first),
 * point transform 0 — so decoding gives back every sample exactly. One fixed Huffman table covering
 * every difference category 0…16.
 */
import { markerSegment as segment } from './markers';

/** Code lengths 2…14: the first of category 0, five of 1…5, one each of 6…16 (Kraft sum < 1). */
const BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
const HUFFVAL = Array.from({ length: 17 }, (_, i) => i);

/** Canonical codes (T.81 Annex C) by category. */
const CODES: { code: number; length: number }[] = (() => {
  const out: { code: number; length: number }[] = [];
  let code = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < BITS[length - 1]; i++) out[HUFFVAL[k++]] = { code: code++, length };
    code <<= 1;
  }
  return out;
})();

/** Entropy-coded segment writer: bits MSB first, a 0x00 stuffed after every 0xFF, 1-bits padding. */
class HuffmanBits {
  private readonly out: number[] = [];
  private acc = 0;
  private n = 0;

  put(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >>> i) & 1);
      if (++this.n === 8) this.flushByte();
    }
  }

  private flushByte(): void {
    this.out.push(this.acc);
    if (this.acc === 0xff) this.out.push(0x00);
    this.acc = 0;
    this.n = 0;
  }

  finish(): Buffer {
    if (this.n > 0) this.put((1 << (8 - this.n)) - 1, 8 - this.n);
    return Buffer.from(this.out);
  }
}

/** Encodes `samples` (row-major, each < 2^precision) as a JPEG Lossless SV1 bitstream, SOI to EOI. */
export function encodeJpegLossless(
  samples: Uint16Array,
  rows: number,
  columns: number,
  precision: number,
): Buffer {
  if (precision < 2 || precision > 16) throw new Error(`JPEG Lossless precision 2…16, not ${precision}`);
  const bits = new HuffmanBits();
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const i = y * columns + x;
      const predicted = x > 0 ? samples[i - 1] : y > 0 ? samples[i - columns] : 1 << (precision - 1);
      // the difference modulo 2^16 (T.81 H.1.2.1), as a signed value
      let diff = (samples[i] - predicted) & 0xffff;
      if (diff >= 0x8000) diff -= 0x10000;
      const magnitude = Math.abs(diff);
      const category = magnitude === 0 ? 0 : 32 - Math.clz32(magnitude);
      const { code, length } = CODES[category];
      bits.put(code, length);
      // category 16 (a difference of 32768) has no additional bits
      if (category > 0 && category < 16) bits.put(diff > 0 ? diff : diff - 1, category);
    }
  }
  const entropy = bits.finish();
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    // SOF3: lossless, Huffman; one component, no subsampling
    segment(0xffc3, [precision, rows >> 8, rows & 0xff, columns >> 8, columns & 0xff, 1, 1, 0x11, 0]),
    segment(0xffc4, [0x00, ...BITS, ...HUFFVAL]),
    // SOS: component 1 with table 0, Ss = predictor 1, Se = 0, Ah/Al = point transform 0
    segment(0xffda, [1, 1, 0x00, 1, 0, 0]),
    entropy,
    Buffer.from([0xff, 0xd9]),
  ]);
}
