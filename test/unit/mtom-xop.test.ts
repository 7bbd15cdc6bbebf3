import { randomBytes } from 'node:crypto';
import { base64Stream } from '@xcai/shared/src/mtom/base64';
import { MtomError } from '@xcai/shared/src/mtom/errors';
import { parseMediaType } from '@xcai/shared/src/mtom/media-type';
import { cidFromHref, cidHref, contentIdKey, XopResolver } from '@xcai/shared/src/mtom/xop';
import { collect, errorOf } from '../fixtures/mtom/helpers';

describe('cid helpers', () => {
  it.each([
    ['cid:abc%40x', 'abc@x'],
    ['cid:abc@x', 'abc@x'],
    ['CID:abc@x', 'abc@x'],
    ['  cid:abc@x  ', 'abc@x'],
    ['cid:http://tempuri.org/1/638509440267508087', 'http://tempuri.org/1/638509440267508087'],
    ['cid:http%3A%2F%2Ftempuri.org%2F1%2F638509440267508087', 'http://tempuri.org/1/638509440267508087'],
    [
      'cid:1.urn:uuid:3D4B161591CD1DEC0C1286850962319@apache.org',
      '1.urn:uuid:3D4B161591CD1DEC0C1286850962319@apache.org',
    ],
    ['cid:%E2%82%AC@x', '€@x'],
    ['cid:bad%zz%4', 'bad%zz%4'], // malformed escapes are kept
    ['cid:half%E2%82', 'half%E2%82'], // an incomplete UTF-8 sequence is kept
    ['abc@x', 'abc@x'], // liberal: no scheme
  ])('cidFromHref(%p) = %p', (href, id) => {
    expect(cidFromHref(href)).toBe(id);
  });

  it('rejects an href naming nothing', () => {
    for (const href of ['cid:', '', '  ', 'cid:<>']) {
      expect(() => cidFromHref(href)).toThrow(MtomError);
    }
  });

  it('normalises hrefs and Content-IDs the same way, keeping case', () => {
    const pairs: [string, string][] = [
      ['cid:abc%40x', '<abc@x>'],
      ['cid:abc@x', 'abc@x'],
      ['cid:http://tempuri.org/1/638509440267508087', '<http://tempuri.org/1/638509440267508087>'],
      ['cid:a%20b', '<a b>'],
    ];
    for (const [href, id] of pairs) expect(contentIdKey(cidFromHref(href))).toBe(contentIdKey(id));
    for (const [href, id] of pairs) expect(contentIdKey(href)).toBe(contentIdKey(id));
    expect(contentIdKey('<ABC@x>')).not.toBe(contentIdKey('<abc@x>'));
  });

  it('cidHref escapes only what a URL cannot carry, and round-trips', () => {
    expect(cidHref('<0ab-cd@xcai>')).toBe('cid:0ab-cd@xcai');
    expect(cidHref('http://tempuri.org/1/6385')).toBe('cid:http://tempuri.org/1/6385');
    expect(cidHref('a b%c€')).toBe('cid:a%20b%25c%E2%82%AC');
    for (const id of ['a b%c€', 'x@y', 'odd"id']) expect(contentIdKey(cidFromHref(cidHref(id)))).toBe(id);
  });
});

describe('XopResolver', () => {
  it('matches parts to includes and reports missing, dangling and duplicates', () => {
    const r = new XopResolver();
    expect(r.expect('cid:doc1%40x')).toBe('doc1@x');
    r.expect('cid:doc2@x');
    r.expect('cid:http://tempuri.org/3/1');
    expect(() => r.expect('cid:doc1@x')).toThrow(expect.objectContaining({ code: 'duplicate-include' }));
    expect(r.accept('<doc1@x>')).toBe('cid:doc1%40x');
    expect(
      r.accept({ headers: { contentId: 'http://tempuri.org/3/1', all: {} }, body: undefined as never }),
    ).toBe('cid:http://tempuri.org/3/1');
    expect(r.accept('<stray@x>')).toBeNull();
    expect(r.accept({ headers: { all: {} }, body: undefined as never })).toBeNull();
    expect(() => r.accept('doc1@x')).toThrow(expect.objectContaining({ code: 'duplicate-content-id' }));
    expect(() => r.accept('stray@x')).toThrow(expect.objectContaining({ code: 'duplicate-content-id' }));
    expect(r.remaining()).toEqual(['cid:doc2@x']);
    expect(r.dangling()).toEqual(['stray@x', '']);
    expect(() => r.expect('cid:')).toThrow(expect.objectContaining({ code: 'bad-href' }));
  });
});

describe('base64Stream', () => {
  it('decodes, ignoring whitespace, in chunks', async () => {
    const data = randomBytes(1_000_003);
    const text = data.toString('base64').replace(/.{76}/g, '$&\r\n').replace(/A/g, ' A\t');
    const s = base64Stream(text);
    const out = await collect(s);
    expect(out.equals(data)).toBe(true);
  });

  it.each([
    ['', ''],
    ['QQ==', 'A'],
    ['QQ', 'A'],
    ['QUI=', 'AB'],
    ['QUI', 'AB'],
    [' Q U J D ', 'ABC'],
  ])('decodes %p', async (text, want) => {
    expect((await collect(base64Stream(text))).toString()).toBe(want);
  });

  it.each(['QQ==QQ==', 'Q$==', 'QUJD-_', 'Q', 'QUJDR', 'QQ=', 'QQ===', '<xop:Include/>', 'QU\u00e9J'])(
    'rejects %p with bad-base64 before emitting anything',
    async (text) => {
      const s = base64Stream(text);
      let emitted = 0;
      s.on('data', (c: Buffer) => (emitted += c.length));
      const e = await errorOf(collect(s));
      expect(e).toBeInstanceOf(MtomError);
      expect(e.code).toBe('bad-base64');
      expect(emitted).toBe(0);
    },
  );
});

describe('parseMediaType', () => {
  it('is liberal about spacing, quoting and empty parameters', () => {
    expect(
      parseMediaType(
        'Multipart/Related ;type="application/xop+xml";;  boundary=abc ;start="<a;b@x>"; start-info="application/soap+xml"; x; action="urn:\\"q\\""',
      ),
    ).toEqual({
      type: 'multipart/related',
      params: {
        type: 'application/xop+xml',
        boundary: 'abc',
        start: '<a;b@x>',
        'start-info': 'application/soap+xml',
        action: 'urn:"q"',
      },
    });
    expect(parseMediaType('application/xop+xml;charset=utf-8;type="application/soap+xml"')?.params.type).toBe(
      'application/soap+xml',
    );
    expect(parseMediaType('text/plain; name="unterminated')?.params.name).toBe('unterminated');
    expect(parseMediaType('nonsense')).toBeNull();
    expect(parseMediaType('')).toBeNull();
  });
});
