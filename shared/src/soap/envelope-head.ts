/**
 * Where the head of a SOAP envelope ends: the offset of the soap:Body start tag (a child of the
 * root element whose local name is `Body`), found by a small tag scanner that skips comments, CDATA
 * sections, processing instructions and quoted attribute values, so that only a real child of the
 * Envelope counts. Lets a receiver read and check the header (who sent it, what it answers) before
 * it reads — let alone parses — the body. The head found here is parsed by the strict XML parser
 * (`decodeEnvelopeHead`), and the full envelope afterwards, so nothing is trusted from the scan.
 */

export type HeadScan =
  /** The Body start tag begins at `bodyAt`; `rootQname` is the Envelope element's qualified name. */
  | { bodyAt: number; rootQname: string }
  /** Not found in the bytes so far. */
  | 'more'
  /** Something the strict parser refuses anyway (a DOCTYPE, an end tag without start). */
  | 'malformed';

/** Scans `buf` (UTF-8; the markup is ASCII) for the start of the Envelope's Body child. */
export function findBodyStart(buf: Buffer): HeadScan {
  const s = buf.toString('latin1');
  let depth = 0;
  let rootQname: string | undefined;
  let i = 0;
  for (;;) {
    const lt = s.indexOf('<', i);
    if (lt < 0) return 'more';
    if (s.startsWith('<!--', lt)) {
      const e = s.indexOf('-->', lt + 4);
      if (e < 0) return 'more';
      i = e + 3;
    } else if (s.startsWith('<![CDATA[', lt)) {
      const e = s.indexOf(']]>', lt + 9);
      if (e < 0) return 'more';
      i = e + 3;
    } else if (s.startsWith('<?', lt)) {
      const e = s.indexOf('?>', lt + 2);
      if (e < 0) return 'more';
      i = e + 2;
    } else if (s.startsWith('<!', lt)) {
      return lt + 2 < s.length ? 'malformed' : 'more';
    } else if (s.startsWith('</', lt)) {
      const e = s.indexOf('>', lt + 2);
      if (e < 0) return 'more';
      if (--depth < 1) return 'malformed'; // the Envelope ended before any Body
      i = e + 1;
    } else {
      const m = /^<([^\s/>]+)/.exec(s.slice(lt, lt + 1024));
      if (!m) return lt + 1 < s.length ? 'malformed' : 'more';
      const end = startTagEnd(s, lt + m[0].length);
      if (end < 0) return 'more';
      const qname = m[1] as string;
      if (depth === 1 && qname.slice(qname.indexOf(':') + 1) === 'Body') {
        return { bodyAt: lt, rootQname: rootQname as string };
      }
      if (depth === 0) rootQname = qname;
      if (s.charCodeAt(end - 1) !== 0x2f /* / */) depth++;
      else if (depth === 0) return 'malformed'; // an empty root
      i = end + 1;
    }
  }
}

/** Index of the `>` closing a start tag whose attributes begin at `from` (quotes honoured), or -1. */
function startTagEnd(s: string, from: number): number {
  let quote = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (quote) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) quote = c;
    else if (c === 0x3e) return i;
  }
  return -1;
}
