/**
 * Encoding of DICOM text values for the Specific Character Sets the generator uses:
 * default repertoire (ASCII), `\ISO 2022 IR 87` (JIS X 0208 with ISO 2022 escapes) and `ISO_IR 192` (UTF-8).
 */
import { TextDecoder } from 'node:util';
import type { CharacterSet, PersonNameSpec } from './types';

const ESC = 0x1b;
/** ESC $ B: designate JIS X 0208 (ISO-IR 87) to G0. */
const TO_JIS_X_0208 = [ESC, 0x24, 0x42];
/** ESC ( B: designate ASCII (ISO-IR 6) to G0. */
const TO_ASCII = [ESC, 0x28, 0x42];

/** Values of (0008,0005) for a character set, or undefined where the element is left out. */
export function specificCharacterSet(cs: CharacterSet): string[] | undefined {
  switch (cs) {
    case 'ISO_IR 6':
      return undefined;
    case 'ISO 2022 IR 87':
      // value 1 empty: G0 starts as the default repertoire (PS3.3 C.12.1.1.2, PS3.5 Annex H)
      return ['', 'ISO 2022 IR 87'];
    case 'ISO_IR 192':
      return ['ISO_IR 192'];
    default:
      throw new Error(`unsupported character set ${String(cs)}`);
  }
}

let jisTable: Map<string, number> | undefined;

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
  const out: number[] = [];
  let jis = false;
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (cp < 0x80) {
      assertDefaultRepertoire(ch);
      if (jis) out.push(...TO_ASCII);
      jis = false;
      out.push(cp);
      continue;
    }
    const code = jisX0208().get(ch);
    if (code === undefined)
      throw new Error(`character ${JSON.stringify(ch)} is not in JIS X 0208 (ISO 2022 IR 87)`);
    if (!jis) out.push(...TO_JIS_X_0208);
    jis = true;
    out.push(code >> 8, code & 0xff);
  }
  if (jis) out.push(...TO_ASCII);
  return Buffer.from(out);
}

/** Encodes a text value (PN, LO, SH, ST, LT, UT) in the given character set; the caller pads. */
export function encodeText(cs: CharacterSet, text: string): Buffer {
  switch (cs) {
    case 'ISO_IR 6':
      assertDefaultRepertoire(text);
      return Buffer.from(text, 'latin1');
    case 'ISO 2022 IR 87':
      return encodeIso2022Ir87(text);
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
