import { TextDecoder } from 'node:util';
import {
  decodeText,
  encodeIso2022Ir159,
  encodeIso2022Ir87,
  encodeText,
  hl7PersonName,
  personNameValue,
  specificCharacterSet,
} from '../../services/reference-community/src/seed/charset';

/** Bytes written in the standard's column/row notation ("05/09 06/01 …"). */
function columnRow(text: string): Buffer {
  return Buffer.from(
    text
      .trim()
      .split(/\s+/)
      .map((cr) => {
        const [c, r] = cr.split('/').map(Number);
        return c * 16 + r;
      }),
  );
}

/** DICOM PS3.5 Annex H.3.1, Example 1: Yamada^Tarou=山田^太郎=やまだ^たろう in `\ISO 2022 IR 87`. */
const ANNEX_H_YAMADA = columnRow(`
  05/09 06/01 06/13 06/01 06/04 06/01 05/14 05/04 06/01 07/02 06/15 07/05 03/13
  01/11 02/04 04/02 03/11 03/03 04/05 04/04 01/11 02/08 04/02 05/14
  01/11 02/04 04/02 04/02 04/00 04/15 03/10 01/11 02/08 04/02 03/13
  01/11 02/04 04/02 02/04 06/04 02/04 05/14 02/04 04/00 01/11 02/08 04/02 05/14
  01/11 02/04 04/02 02/04 03/15 02/04 06/13 02/04 02/06 01/11 02/08 04/02
`);

/** UTF-8 of 佐藤^花子=さとう^はなこ, byte by byte. */
const SATO_UTF8 = Buffer.from(
  'e4bd90 e897a4 5e e88ab1 e5ad90 3d e38195 e381a8 e38186 5e e381af e381aa e38193'.replace(/ /g, ''),
  'hex',
);

describe('seed character sets', () => {
  it('encodes the PS3.5 Annex H example byte for byte', () => {
    const value = personNameValue({
      alphabetic: 'Yamada^Tarou',
      ideographic: '山田^太郎',
      phonetic: 'やまだ^たろう',
    });
    expect(value).toBe('Yamada^Tarou=山田^太郎=やまだ^たろう');
    const bytes = encodeIso2022Ir87(value);
    expect(bytes.toString('hex')).toBe(ANNEX_H_YAMADA.toString('hex'));
    expect(bytes.length).toBe(60);
    // an independent decoder reads it back
    expect(new TextDecoder('iso-2022-jp').decode(bytes)).toBe('Yamada^Tarou=山田^太郎=やまだ^たろう');
    expect(decodeText('ISO 2022 IR 87', bytes)).toBe(value);
  });

  it('returns to ASCII before every delimiter and at the end of the value', () => {
    const bytes = encodeIso2022Ir87('胸部CT 単純');
    expect(bytes.toString('latin1')).toBe('\x1b$B6;It\x1b(BCT \x1b$BC1=c\x1b(B');
    expect(new TextDecoder('iso-2022-jp').decode(bytes)).toBe('胸部CT 単純');
    // two adjacent JIS characters share one escape
    expect(encodeIso2022Ir87('山田').toString('hex')).toBe('1b2442' + '3b334544' + '1b2842');
  });

  it('rejects characters outside JIS X 0208 and outside the default repertoire', () => {
    expect(() => encodeIso2022Ir87('髙橋')).toThrow(/not in JIS X 0208/); // 髙 is not in JIS X 0208
    expect(() => encodeIso2022Ir87('ｱ')).toThrow(/not in JIS X 0208/); // half-width katakana is ISO 2022 IR 13
    expect(() => encodeText('ISO_IR 6', 'Müller')).toThrow(/default repertoire/);
    expect(() => encodeIso2022Ir87('a\u0001')).toThrow(/default repertoire/);
  });

  it('encodes ISO 2022 IR 159: a character only JIS X 0212 has between ESC $ ( D and the next escape', () => {
    // 森 (JIS X 0208 3F39) ^ 鷗 (JIS X 0212 row 76 cell 31: 6C3F; JIS X 0208 has only 鴎) 外 (0208 3330)
    const bytes = encodeIso2022Ir159('森^鷗外');
    expect(bytes.toString('hex')).toBe(
      '1b2442' + '3f39' + '1b2842' + '5e' + '1b242844' + '6c3f' + '1b2442' + '3330' + '1b2842',
    );
    // independent readings: the JIS X 0208 runs with the ISO-2022-JP decoder, the JIS X 0212 code as EUC-JP
    const iso2022jp = new TextDecoder('iso-2022-jp');
    expect(iso2022jp.decode(Buffer.from('1b24423f391b2842', 'hex'))).toBe('森');
    expect(new TextDecoder('euc-jp').decode(Buffer.from([0x8f, 0x6c | 0x80, 0x3f | 0x80]))).toBe('鷗');
    expect(decodeText('ISO 2022 IR 159', bytes)).toBe('森^鷗外');
    // what JIS X 0208 has is taken from it; plain IR 87 text comes out as with IR 87
    expect(encodeIso2022Ir159('山田^太郎').equals(encodeIso2022Ir87('山田^太郎'))).toBe(true);
    expect(() => encodeIso2022Ir87('鷗')).toThrow(/not in JIS X 0208/);
    expect(() => encodeIso2022Ir159('😀')).toThrow(/neither JIS X 0208 nor JIS X 0212/);
  });

  it('encodes ISO_IR 192 as UTF-8', () => {
    const bytes = encodeText('ISO_IR 192', '佐藤^花子=さとう^はなこ');
    expect(bytes.equals(SATO_UTF8)).toBe(true);
    expect(new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toBe('佐藤^花子=さとう^はなこ');
  });

  it('gives the Specific Character Set values', () => {
    expect(specificCharacterSet('ISO_IR 6')).toBeUndefined();
    expect(specificCharacterSet('ISO 2022 IR 87')).toEqual(['', 'ISO 2022 IR 87']);
    expect(specificCharacterSet('ISO 2022 IR 159')).toEqual(['', 'ISO 2022 IR 87', 'ISO 2022 IR 159']);
    expect(specificCharacterSet('ISO_IR 192')).toEqual(['ISO_IR 192']);
  });

  it('writes HL7 XPN repetitions for PID-5', () => {
    expect(
      hl7PersonName({ alphabetic: 'Yamada^Tarou', ideographic: '山田^太郎', phonetic: 'やまだ^たろう' }),
    ).toBe('Yamada^Tarou^^^^^L^A~山田^太郎^^^^^L^I~やまだ^たろう^^^^^L^P');
    expect(hl7PersonName({ alphabetic: 'Tanaka^Kenji' })).toBe('Tanaka^Kenji');
    // DICOM prefix/suffix (components 4 and 5) swap places in XPN
    expect(hl7PersonName({ alphabetic: 'Doe^John^Q^Dr^Jr' })).toBe('Doe^John^Q^Jr^Dr');
    expect(personNameValue({ alphabetic: 'Tanaka^Kenji', ideographic: '', phonetic: '' })).toBe(
      'Tanaka^Kenji',
    );
  });
});
