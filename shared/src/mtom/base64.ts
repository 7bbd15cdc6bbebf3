import { Readable } from 'node:stream';
import { MtomError } from './errors';

/** Base64 characters decoded per pushed chunk (a multiple of 4). */
const SLICE = 256 * 1024;
const WHITESPACE = /[\t\n\f\r ]+/g;
const NOT_BASE64 = /[^A-Za-z0-9+/=\t\n\f\r ]/;

/**
 * Decodes inline base64 text (e.g. an `xdsb:Document` without XOP) as a stream of bytes, so a large
 * document never exists twice in memory as one Buffer. Whitespace is ignored; missing final padding is
 * accepted. Any other character, `=` before the end, or an impossible length → the stream fails with
 * MtomError 'bad-base64' before emitting anything (the text is checked up front; it is in memory
 * already).
 */
export function base64Stream(text: string): Readable {
  let clean: string | null = null;
  let pos = 0;
  return new Readable({
    highWaterMark: SLICE,
    read() {
      if (clean === null) {
        try {
          clean = validate(text);
        } catch (e) {
          this.destroy(e as Error);
          return;
        }
      }
      while (pos < clean.length) {
        const end = Math.min(clean.length, pos + SLICE);
        const chunk = Buffer.from(clean.slice(pos, end), 'base64');
        pos = end;
        if (!this.push(chunk)) return;
      }
      this.push(null);
    },
  });
}

/** Whitespace-free base64, or MtomError 'bad-base64'. */
function validate(text: string): string {
  const bad = NOT_BASE64.exec(text);
  if (bad) {
    throw new MtomError(
      'bad-base64',
      `inline base64 holds a character that is not base64 (${JSON.stringify(bad[0])} at offset ${bad.index})`,
    );
  }
  const clean = text.replace(WHITESPACE, '');
  const eq = clean.indexOf('=');
  if (eq >= 0 && (clean.length - eq > 2 || !/^=+$/.test(clean.slice(eq)))) {
    throw new MtomError('bad-base64', `inline base64 has '=' before its end (offset ${eq})`);
  }
  const dataLen = eq >= 0 ? eq : clean.length;
  if (dataLen % 4 === 1 || (eq >= 0 && clean.length % 4 !== 0)) {
    throw new MtomError('bad-base64', `inline base64 has an impossible length (${clean.length} characters)`);
  }
  return clean;
}
