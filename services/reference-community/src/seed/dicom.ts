/**
 * A small DICOM Part 10 writer and reader for little-endian transfer syntaxes (Explicit and Implicit VR,
 * and the lossless compressed ones, whose data set is Explicit VR LE with encapsulated Pixel Data).
 * The writer produces exact bytes (defined-length sequences and items, even value lengths, elements in tag
 * order); the reader understands defined and undefined lengths, which real KOS files use.
 */

export const TS_EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const TS_IMPLICIT_VR_LE = '1.2.840.10008.1.2';
/** JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection Value 1). */
export const TS_JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
/** JPEG-LS Lossless Image Compression. */
export const TS_JPEG_LS_LOSSLESS = '1.2.840.10008.1.2.4.80';

/** Transfer syntaxes whose Pixel Data is encapsulated (compressed); only lossless ones are written. */
const ENCAPSULATED = new Set([TS_JPEG_LOSSLESS_SV1, TS_JPEG_LS_LOSSLESS]);

export function isEncapsulated(transferSyntaxUid: string): boolean {
  return ENCAPSULATED.has(transferSyntaxUid);
}

/** This generator's implementation class (a 2.25 UUID-derived UID, no registered root needed). */
export const IMPLEMENTATION_CLASS_UID = '2.25.306981536659234530536668564307272300957';
export const IMPLEMENTATION_VERSION_NAME = 'XCAI_SEED_1';

export type ValueVr =
  | 'AE'
  | 'AS'
  | 'CS'
  | 'DA'
  | 'DS'
  | 'DT'
  | 'IS'
  | 'LO'
  | 'LT'
  | 'OB'
  | 'OW'
  | 'PN'
  | 'SH'
  | 'ST'
  | 'TM'
  | 'UC'
  | 'UI'
  | 'UL'
  | 'US'
  | 'UT';

export type Element =
  | { tag: number; vr: ValueVr; value: Buffer }
  | { tag: number; vr: 'SQ'; items: Element[][] }
  /** Encapsulated Pixel Data (PS3.5 A.4): an empty Basic Offset Table, then one fragment per frame. */
  | { tag: number; vr: 'OB'; fragments: Buffer[] };

/** VRs with a 2-byte reserved field and a 4-byte length in Explicit VR. */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

const ITEM = 0xfffee000;
const ITEM_DELIMITATION = 0xfffee00d;
const SEQUENCE_DELIMITATION = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;

/** Pads to even length: NUL for UI and OB, space for the text VRs. */
function padEven(value: Buffer, vr: ValueVr): Buffer {
  if (value.length % 2 === 0) return value;
  return Buffer.concat([value, Buffer.from([vr === 'UI' || vr === 'OB' ? 0x00 : 0x20])]);
}

// ---- element constructors ----------------------------------------------------------------------

/** A string element of the default repertoire (CS, DA, TM, DS, IS, AE, …); multiple values joined with '\'. */
export function ascii(tag: number, vr: ValueVr, value: string | readonly string[]): Element {
  const text = typeof value === 'string' ? value : value.join('\\');
  if (!/^[\x20-\x7e]*$/.test(text)) throw new Error(`non-ASCII value for ${tagString(tag)} ${vr}: ${text}`);
  return { tag, vr, value: padEven(Buffer.from(text, 'latin1'), vr) };
}

/** A character-set-dependent string element (PN, LO, SH, ST, LT, UT) from already encoded bytes. */
export function encoded(tag: number, vr: ValueVr, bytes: Buffer): Element {
  return { tag, vr, value: padEven(bytes, vr) };
}

export function uid(tag: number, value: string): Element {
  return ascii(tag, 'UI', value);
}

export function us(tag: number, ...values: number[]): Element {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return { tag, vr: 'US', value: b };
}

export function ul(tag: number, value: number): Element {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value, 0);
  return { tag, vr: 'UL', value: b };
}

export function binary(tag: number, vr: 'OB' | 'OW', value: Buffer): Element {
  return { tag, vr, value: padEven(value, vr) };
}

export function sq(tag: number, items: Element[][]): Element {
  return { tag, vr: 'SQ', items };
}

/** Encapsulated Pixel Data (7FE0,0010): one frame per fragment, each padded to even length. */
export function encapsulated(frames: Buffer[]): Element {
  return { tag: 0x7fe00010, vr: 'OB', fragments: frames.map((f) => padEven(f, 'OB')) };
}

// ---- writer ------------------------------------------------------------------------------------

function header(tag: number, vr: string, length: number, explicit: boolean): Buffer {
  const group = tag >>> 16;
  const element = tag & 0xffff;
  if (!explicit || group === 0xfffe) {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(group, 0);
    b.writeUInt16LE(element, 2);
    b.writeUInt32LE(length, 4);
    return b;
  }
  if (LONG_VRS.has(vr)) {
    const b = Buffer.alloc(12);
    b.writeUInt16LE(group, 0);
    b.writeUInt16LE(element, 2);
    b.write(vr, 4, 'latin1');
    b.writeUInt32LE(length, 8);
    return b;
  }
  if (length > 0xffff) throw new Error(`value of ${tagString(tag)} ${vr} too long (${length} bytes)`);
  const b = Buffer.alloc(8);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  b.write(vr, 4, 'latin1');
  b.writeUInt16LE(length, 6);
  return b;
}

function encodeInto(out: Buffer[], elements: readonly Element[], explicit: boolean): number {
  const sorted = [...elements].sort((a, b) => a.tag - b.tag);
  let total = 0;
  for (let i = 0; i < sorted.length; i++) {
    const el = sorted[i];
    if (i > 0 && sorted[i - 1].tag === el.tag) throw new Error(`duplicate element ${tagString(el.tag)}`);
    if ('fragments' in el) {
      if (!explicit) throw new Error('encapsulated Pixel Data needs Explicit VR');
      out.push(header(el.tag, 'OB', UNDEFINED_LENGTH, true), header(ITEM, '', 0, true));
      total += 12 + 8;
      for (const f of el.fragments) {
        out.push(header(ITEM, '', f.length, true), f);
        total += 8 + f.length;
      }
      out.push(header(SEQUENCE_DELIMITATION, '', 0, true));
      total += 8;
    } else if (el.vr === 'SQ') {
      const headerAt = out.length;
      out.push(Buffer.alloc(0));
      let seqLength = 0;
      for (const item of el.items) {
        const itemAt = out.length;
        out.push(Buffer.alloc(0));
        const itemLength = encodeInto(out, item, explicit);
        out[itemAt] = header(ITEM, '', itemLength, explicit);
        seqLength += 8 + itemLength;
      }
      out[headerAt] = header(el.tag, 'SQ', seqLength, explicit);
      total += out[headerAt].length + seqLength;
    } else {
      if (el.value.length % 2 !== 0) throw new Error(`odd length value for ${tagString(el.tag)}`);
      const h = header(el.tag, el.vr, el.value.length, explicit);
      out.push(h, el.value);
      total += h.length + el.value.length;
    }
  }
  return total;
}

export function encodeDataset(elements: readonly Element[], explicit: boolean): Buffer {
  const out: Buffer[] = [];
  encodeInto(out, elements, explicit);
  return Buffer.concat(out);
}

/** 128-byte preamble, "DICM" and the File Meta Information group (always Explicit VR LE). */
export function fileMetaHeader(
  sopClassUid: string,
  sopInstanceUid: string,
  transferSyntaxUid: string,
): Buffer {
  const group = encodeDataset(
    [
      binary(0x00020001, 'OB', Buffer.from([0x00, 0x01])),
      uid(0x00020002, sopClassUid),
      uid(0x00020003, sopInstanceUid),
      uid(0x00020010, transferSyntaxUid),
      uid(0x00020012, IMPLEMENTATION_CLASS_UID),
      ascii(0x00020013, 'SH', IMPLEMENTATION_VERSION_NAME),
    ],
    true,
  );
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    encodeDataset([ul(0x00020000, group.length)], true),
    group,
  ]);
}

/** A complete Part 10 file. */
export function encodePart10(
  sopClassUid: string,
  sopInstanceUid: string,
  transferSyntaxUid: string,
  elements: readonly Element[],
): Buffer {
  const explicit = explicitFor(transferSyntaxUid);
  return Buffer.concat([
    fileMetaHeader(sopClassUid, sopInstanceUid, transferSyntaxUid),
    encodeDataset(elements, explicit),
  ]);
}

export function explicitFor(transferSyntaxUid: string): boolean {
  if (transferSyntaxUid === TS_EXPLICIT_VR_LE || isEncapsulated(transferSyntaxUid)) return true;
  if (transferSyntaxUid === TS_IMPLICIT_VR_LE) return false;
  throw new Error(
    `unsupported transfer syntax ${transferSyntaxUid} (Explicit/Implicit VR Little Endian, JPEG Lossless SV1, JPEG-LS Lossless)`,
  );
}

/** Size in bytes of an element's header in the given encoding. */
export function elementHeaderLength(vr: string, explicit: boolean): number {
  return explicit && LONG_VRS.has(vr) ? 12 : 8;
}

export function tagString(tag: number): string {
  const hex = (n: number) => n.toString(16).padStart(4, '0').toUpperCase();
  return `(${hex(tag >>> 16)},${hex(tag & 0xffff)})`;
}

// ---- reader ------------------------------------------------------------------------------------

export interface ParsedElement {
  tag: number;
  vr: string;
  /** Offset of the value in the buffer and its length (undefined length: the encoded extent). */
  offset: number;
  length: number;
  /** Value bytes (not for sequences). */
  value?: Buffer;
  /** Items of a sequence. */
  items?: ParsedDataset[];
  /** Fragments of encapsulated Pixel Data (the Basic Offset Table first). */
  fragments?: Buffer[];
}

export type ParsedDataset = Map<number, ParsedElement>;

export interface ParsedPart10 {
  meta: ParsedDataset;
  dataset: ParsedDataset;
  transferSyntaxUid: string;
}

/** Sequence tags the reader must know to parse Implicit VR data sets (where a VR is not on the wire). */
const KNOWN_SEQUENCES = new Set([
  0x00081111, 0x00081115, 0x00081199, 0x00100024, 0x0040a043, 0x0040a168, 0x0040a370, 0x0040a375, 0x0040a385,
  0x0040a504, 0x0040a730, 0x00081032, 0x00081140, 0x00400260, 0x00400275, 0x0008114a, 0x00081200, 0x0040a073,
]);

const MAX_DEPTH = 32;

class Reader {
  constructor(
    private readonly buf: Buffer,
    private readonly explicit: boolean,
  ) {}

  private need(pos: number, n: number, what: string): void {
    if (pos + n > this.buf.length) throw new Error(`truncated DICOM data at offset ${pos} (${what})`);
  }

  /** Parses elements from pos until end (or an item delimiter when end is undefined); returns [dataset, next]. */
  dataset(pos: number, end: number | undefined, depth: number): [ParsedDataset, number] {
    if (depth > MAX_DEPTH) throw new Error('DICOM sequences nested too deeply');
    const ds: ParsedDataset = new Map();
    const limit = end ?? this.buf.length;
    while (pos < limit) {
      this.need(pos, 8, 'element header');
      const tag = ((this.buf.readUInt16LE(pos) << 16) | this.buf.readUInt16LE(pos + 2)) >>> 0;
      if (tag === ITEM_DELIMITATION) {
        if (end !== undefined) throw new Error(`unexpected item delimiter at offset ${pos}`);
        return [ds, pos + 8];
      }
      if (tag === SEQUENCE_DELIMITATION) {
        // a stray delimiter after a defined-length sequence (seen in real files): skip it
        pos += 8;
        continue;
      }
      let vr: string;
      let length: number;
      let valueAt: number;
      if (this.explicit && tag >>> 16 !== 0xfffe) {
        vr = this.buf.toString('latin1', pos + 4, pos + 6);
        if (LONG_VRS.has(vr)) {
          this.need(pos, 12, 'element header');
          length = this.buf.readUInt32LE(pos + 8);
          valueAt = pos + 12;
        } else {
          length = this.buf.readUInt16LE(pos + 6);
          valueAt = pos + 8;
        }
      } else {
        length = this.buf.readUInt32LE(pos + 4);
        valueAt = pos + 8;
        vr = KNOWN_SEQUENCES.has(tag) || length === UNDEFINED_LENGTH ? 'SQ' : 'UN';
      }
      let next: number;
      let el: ParsedElement;
      if (vr === 'SQ' || (vr === 'UN' && length === UNDEFINED_LENGTH)) {
        // an undefined-length UN is an Implicit VR LE sequence (PS3.5 6.2.2)
        const inner = vr === 'UN' ? new Reader(this.buf, false) : this;
        const [items, after] = inner.sequence(valueAt, length, depth + 1);
        next = after;
        el = { tag, vr: 'SQ', offset: valueAt, length: after - valueAt, items };
      } else if (length === UNDEFINED_LENGTH && (vr === 'OB' || vr === 'OW')) {
        const [fragments, after] = this.fragments(valueAt);
        next = after;
        el = { tag, vr, offset: valueAt, length: after - valueAt, fragments };
      } else {
        if (length === UNDEFINED_LENGTH)
          throw new Error(`undefined length for ${tagString(tag)} ${vr} is not supported`);
        this.need(valueAt, length, tagString(tag));
        next = valueAt + length;
        el = { tag, vr, offset: valueAt, length, value: this.buf.subarray(valueAt, next) };
      }
      if (!ds.has(tag)) ds.set(tag, el);
      pos = next;
    }
    if (end === undefined) throw new Error('missing item delimiter');
    if (pos !== end) throw new Error(`element overruns its container at offset ${pos}`);
    return [ds, pos];
  }

  /** Items of encapsulated data up to the sequence delimiter (PS3.5 A.4). */
  private fragments(pos: number): [Buffer[], number] {
    const out: Buffer[] = [];
    for (;;) {
      this.need(pos, 8, 'fragment header');
      const tag = ((this.buf.readUInt16LE(pos) << 16) | this.buf.readUInt16LE(pos + 2)) >>> 0;
      const length = this.buf.readUInt32LE(pos + 4);
      if (tag === SEQUENCE_DELIMITATION) return [out, pos + 8];
      if (tag !== ITEM) throw new Error(`expected a fragment at offset ${pos}, found ${tagString(tag)}`);
      this.need(pos + 8, length, 'fragment');
      out.push(this.buf.subarray(pos + 8, pos + 8 + length));
      pos += 8 + length;
    }
  }

  private sequence(pos: number, length: number, depth: number): [ParsedDataset[], number] {
    const items: ParsedDataset[] = [];
    const end = length === UNDEFINED_LENGTH ? undefined : pos + length;
    if (end !== undefined) this.need(pos, length, 'sequence');
    while (end === undefined || pos < end) {
      this.need(pos, 8, 'item header');
      const tag = ((this.buf.readUInt16LE(pos) << 16) | this.buf.readUInt16LE(pos + 2)) >>> 0;
      const itemLength = this.buf.readUInt32LE(pos + 4);
      if (tag === SEQUENCE_DELIMITATION) {
        if (end !== undefined) throw new Error(`unexpected sequence delimiter at offset ${pos}`);
        return [items, pos + 8];
      }
      if (tag !== ITEM) throw new Error(`expected an item at offset ${pos}, found ${tagString(tag)}`);
      const [item, after] =
        itemLength === UNDEFINED_LENGTH
          ? this.dataset(pos + 8, undefined, depth)
          : this.dataset(pos + 8, pos + 8 + itemLength, depth);
      items.push(item);
      pos = after;
    }
    if (pos !== end) throw new Error(`item overruns its sequence at offset ${pos}`);
    return [items, pos];
  }
}

/** Parses a data set (no preamble or meta) in the given transfer syntax. */
export function parseDataset(buf: Buffer, transferSyntaxUid: string): ParsedDataset {
  return new Reader(buf, explicitFor(transferSyntaxUid)).dataset(0, buf.length, 0)[0];
}

/** Parses a Part 10 file: preamble, DICM, meta group, then the data set in the meta's transfer syntax. */
export function parsePart10(buf: Buffer): ParsedPart10 {
  if (buf.length < 132 || buf.toString('latin1', 128, 132) !== 'DICM') {
    throw new Error('not a DICOM Part 10 file (no DICM prefix at offset 128)');
  }
  // The meta group is Explicit VR LE and ends where group 0002 ends.
  let pos = 132;
  while (pos + 8 <= buf.length && buf.readUInt16LE(pos) === 0x0002) pos = nextElementEnd(buf, pos);
  const meta = new Reader(buf.subarray(0, pos), true).dataset(132, pos, 0)[0];
  const transferSyntaxUid = stringValue(meta, 0x00020010);
  if (!transferSyntaxUid) throw new Error('file meta has no TransferSyntaxUID');
  const dataset = new Reader(buf, explicitFor(transferSyntaxUid)).dataset(pos, buf.length, 0)[0];
  return { meta, dataset, transferSyntaxUid };
}

function nextElementEnd(buf: Buffer, pos: number): number {
  const vr = buf.toString('latin1', pos + 4, pos + 6);
  if (LONG_VRS.has(vr)) return pos + 12 + buf.readUInt32LE(pos + 8);
  return pos + 8 + buf.readUInt16LE(pos + 6);
}

/** A value of the default repertoire (UI, CS, ASCII LO, …) as text, trailing NUL/space padding removed. */
export function stringValue(ds: ParsedDataset | undefined, tag: number): string | undefined {
  const v = ds?.get(tag)?.value;
  if (v === undefined) return undefined;
  return v.toString('latin1').replace(/[\0 ]+$/, '');
}

export function items(ds: ParsedDataset | undefined, tag: number): ParsedDataset[] {
  return ds?.get(tag)?.items ?? [];
}
