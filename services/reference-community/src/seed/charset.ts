/**
 * Encoding of DICOM text values for the Specific Character Sets the generator uses:
 * default repertoire (ASCII), `\ISO 2022 IR 87` (JIS X 0208 with ISO 2022 escapes),
 * `\ISO 2022 IR 87\ISO 2022 IR 159` (also JIS X 0212, the supplementary kanji) and `ISO_IR 192` (UTF-8).
 */
import { TextDecoder } from 'node:util';
import type { CharacterSet, PersonNameSpec } from './types';

const ESC = 0x1b;
/** ESC $ B: designate JIS X 0208 (ISO-IR 87) to G0. */
const TO_JIS_X_0208 = [ESC, 0x24, 0x42];
/** ESC ( B: designate ASCII (ISO-IR 6) to G0. */
const TO_ASCII = [ESC, 0x28, 0x42];
/** ESC $ ( D: designate JIS X 0212 (ISO-IR 159) to G0 (PS3.3 Table C.12-4). */
const TO_JIS_X_0212 = [ESC, 0x24, 0x28, 0x44];

/** Values of (0008,0005) for a character set, or undefined where the element is left out. */
export function specificCharacterSet(cs: CharacterSet): string[] | undefined {
  switch (cs) {
    case 'ISO_IR 6':
      return undefined;
    case 'ISO 2022 IR 87':
      // value 1 empty: G0 starts as the default repertoire (PS3.3 C.12.1.1.2, PS3.5 Annex H)
      return ['', 'ISO 2022 IR 87'];
    case 'ISO 2022 IR 159':
      // JIS X 0212 only supplements JIS X 0208: both are designated (PS3.3 C.12.1.1.2)
      return ['', 'ISO 2022 IR 87', 'ISO 2022 IR 159'];
    case 'ISO_IR 192':
      return ['ISO_IR 192'];
    default:
      throw new Error(`unsupported character set ${String(cs)}`);
  }
}

let jisTable: Map<string, number> | undefined;
let jis0212Table: Map<string, number> | undefined;

function eucJp(): TextDecoder {
  try {
    return new TextDecoder('euc-jp');
  } catch {
    throw new Error('this Node.js has no EUC-JP decoder (needs full ICU) to build the JIS X 0212 table');
  }
}

/**
 * Unicode → JIS X 0212 code (as for JIS X 0208), built once by decoding every code of the 94 × 94 set
 * as EUC-JP (where JIS X 0212 follows the single shift 0x8F); characters JIS X 0208 has are left out,
 * since the encoder takes those from JIS X 0208.
 */
function jisX0212(): Map<string, number> {
  if (jis0212Table) return jis0212Table;
  const codes: number[] = [];
  for (let row = 1; row <= 94; row++)
    for (let cell = 1; cell <= 94; cell++) codes.push(((row + 0x20) << 8) | (cell + 0x20));
  const bytes = Buffer.alloc(codes.length * 3);
  codes.forEach((c, i) => {
    bytes[3 * i] = 0x8f;
    bytes.writeUInt16BE(c | 0x8080, 3 * i + 1);
  });
  const text = [...eucJp().decode(bytes)];
  if (text.length !== codes.length) throw new Error('unexpected EUC-JP decoder output');
  const jis0208 = jisX0208();
  const table = new Map<string, number>();
  for (let i = 0; i < codes.length; i++) {
    const ch = text[i];
    if (ch !== '\ufffd' && !jis0208.has(ch) && !table.has(ch)) table.set(ch, codes[i]);
  }
  jis0212Table = table;
  return table;
}

/**
 * Unicode → JIS X 0208 code (row+0x20 << 8 | cell+0x20), built once by decoding every code point of the
 * standard rows (1–8 and 16–84; not the vendor rows 9–15 and 85–94) with the ISO-2022-JP decoder.
 */
function jisX0208(): Map<string, number> {
  if (jisTable) return jisTable;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder('iso-2022-jp');
  } catch {
    throw new Error('this Node.js has no ISO-2022-JP decoder (needs full ICU) to build the JIS X 0208 table');
  }
  const codes: number[] = [];
  for (let row = 1; row <= 84; row++) {
    if (row >= 9 && row <= 15) continue;
    for (let cell = 1; cell <= 94; cell++) codes.push(((row + 0x20) << 8) | (cell + 0x20));
  }
  const bytes = Buffer.alloc(codes.length * 2 + 6);
  bytes.set(TO_JIS_X_0208, 0);
  codes.forEach((c, i) => bytes.writeUInt16BE(c, 3 + 2 * i));
  bytes.set(TO_ASCII, bytes.length - 3);
  const text = decoder.decode(bytes);
  if (text.length !== codes.length) throw new Error('unexpected ISO-2022-JP decoder output');
  const table = new Map<string, number>();
  for (let i = 0; i < codes.length; i++) {
    const ch = text[i];
    if (ch !== '\ufffd' && !table.has(ch)) table.set(ch, codes[i]);
  }
  jisTable = table;
  return table;
}

function assertDefaultRepertoire(text: string): void {
  // G0 printable characters plus the control characters the text VRs allow (TAB, LF, FF, CR)
  if (!/^[\x20-\x7e\t\n\f\r]*$/.test(text)) {
    throw new Error(`not encodable in the default repertoire: ${JSON.stringify(text)}`);
  }
}

/**
 * ISO 2022 IR 87 with value 1 empty: ASCII runs as is, JIS X 0208 runs between ESC $ B and ESC ( B. Every
 * ASCII character (so every '^', '=' and '\' delimiter) and the end of the value are in ASCII, as PS3.5
 * 6.1.2.5.3 requires.
 */
export function encodeIso2022Ir87(text: string): Buffer {
  return encodeIso2022Japanese(text, false);
}

/**
 * `\ISO 2022 IR 87\ISO 2022 IR 159`: as IR 87, and a character JIS X 0208 lacks (e.g. 鷗) from JIS X
 * 0212, between ESC $ ( D and the next escape. G0 returns to ASCII as for IR 87.
 */
export function encodeIso2022Ir159(text: string): Buffer {
  return encodeIso2022Japanese(text, true);
}

function encodeIso2022Japanese(text: string, supplementary: boolean): Buffer {
  const out: number[] = [];
  let g0: 'ascii' | '0208' | '0212' = 'ascii';
  const designate = (set: typeof g0, escape: number[]) => {
    if (g0 !== set) out.push(...escape);
    g0 = set;
  };
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (cp < 0x80) {
      assertDefaultRepertoire(ch);
      designate('ascii', TO_ASCII);
      out.push(cp);
      continue;
    }
    let code = jisX0208().get(ch);
    if (code !== undefined) designate('0208', TO_JIS_X_0208);
    else if (supplementary && (code = jisX0212().get(ch)) !== undefined) designate('0212', TO_JIS_X_0212);
    else
      throw new Error(
        supplementary
          ? `character ${JSON.stringify(ch)} is in neither JIS X 0208 nor JIS X 0212 (ISO 2022 IR 87 / IR 159)`
          : `character ${JSON.stringify(ch)} is not in JIS X 0208 (ISO 2022 IR 87)`,
      );
    out.push(code >> 8, code & 0xff);
  }
  designate('ascii', TO_ASCII);
  return Buffer.from(out);
}

/**
 * Reads ISO 2022 Japanese text (ASCII, JIS X 0208 and JIS X 0212 runs) by re-writing it as EUC-JP,
 * which holds the same two sets (JIS X 0212 after the single shift 0x8F), and decoding that.
 */
function decodeIso2022Japanese(bytes: Buffer): string {
  const euc: number[] = [];
  let g0: 'ascii' | '0208' | '0212' = 'ascii';
  for (let i = 0; i < bytes.length;) {
    if (bytes[i] === ESC) {
      const seq = bytes.subarray(i, i + 4).toString('latin1');
      if (seq.startsWith('\x1b$(D')) [g0, i] = ['0212', i + 4];
      else if (seq.startsWith('\x1b$B') || seq.startsWith('\x1b$@')) [g0, i] = ['0208', i + 3];
      else if (seq.startsWith('\x1b(B') || seq.startsWith('\x1b(J')) [g0, i] = ['ascii', i + 3];
      else throw new Error(`unsupported ISO 2022 escape at byte ${i}`);
      continue;
    }
    if (g0 === 'ascii' || bytes[i] < 0x21 || bytes[i] > 0x7e) euc.push(bytes[i++]);
    else {
      if (g0 === '0212') euc.push(0x8f);
      euc.push(bytes[i] | 0x80, (bytes[i + 1] ?? 0) | 0x80);
      i += 2;
    }
  }
  return eucJp().decode(Buffer.from(euc));
}

/** Encodes a text value (PN, LO, SH, ST, LT, UT) in the given character set; the caller pads. */
export function encodeText(cs: CharacterSet, text: string): Buffer {
  switch (cs) {
    case 'ISO_IR 6':
      assertDefaultRepertoire(text);
      return Buffer.from(text, 'latin1');
    case 'ISO 2022 IR 87':
      return encodeIso2022Ir87(text);
    case 'ISO 2022 IR 159':
      return encodeIso2022Ir159(text);
    case 'ISO_IR 192':
      return Buffer.from(text, 'utf8');
    default:
      throw new Error(`unsupported character set ${String(cs)}`);
  }
}

/** Decodes a text value written by encodeText (trailing padding removed). */
export function decodeText(cs: CharacterSet, bytes: Buffer): string {
  const text =
    cs === 'ISO 2022 IR 87'
      ? new TextDecoder('iso-2022-jp').decode(bytes)
      : cs === 'ISO 2022 IR 159'
        ? decodeIso2022Japanese(bytes)
        : cs === 'ISO_IR 192'
          ? bytes.toString('utf8')
          : bytes.toString('latin1');
  return text.replace(/[ \0]+$/, '');
}

/** The DICOM PN value `alphabetic=ideographic=phonetic`, trailing empty groups dropped. */
export function personNameValue(name: PersonNameSpec): string {
  const groups = [name.alphabetic, name.ideographic ?? '', name.phonetic ?? ''];
  while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

/**
 * HL7 v2 XPN repetitions for PID-5 (UTF-8): one per PN group, with name type L and name representation
 * code A (alphabetic), I (ideographic), P (phonetic) when there is more than one group.
 */
export function hl7PersonName(name: PersonNameSpec): string {
  const groups: [string | undefined, string][] = [
    [name.alphabetic, 'A'],
    [name.ideographic, 'I'],
    [name.phonetic, 'P'],
  ];
  const present = groups.filter((g): g is [string, string] => !!g[0]);
  return present
    .map(([group, code]) => {
      // DICOM family^given^middle^prefix^suffix → XPN family^given^middle^suffix^prefix
      const [family = '', given = '', middle = '', prefix = '', suffix = ''] = group.split('^');
      const xpn = [family, given, middle, suffix, prefix];
      if (present.length > 1) xpn.push('', 'L', code);
      while (xpn.length > 1 && xpn[xpn.length - 1] === '') xpn.pop();
      return xpn.join('^');
    })
    .join('~');
}
