/**
 * Slices SAML 2.0 Assertions out of a larger document (wsse:Security header or whole envelope) as
 * standalone XML: the exact source text of each Assertion, with the namespace bindings it inherits
 * from its ancestors redeclared on its start tag. Exclusive canonicalization of the slice equals that
 * of the original element, so the IdP signature still verifies.
 *
 * The input is first parsed strictly (well-formedness, no DTD); the slicing itself is a small
 * quote/comment/CDATA-aware tag scanner over that already-validated text.
 */

import { MAX_HEADER_CHARS, NS_SAML2, parseXmlStrict } from './dom';
import { XuaError } from './errors';

interface Frame {
  /** prefix ('' = default) → namespace URI as written (still escaped). */
  decls: Map<string, string>;
}

const ATTRIBUTE = /([^\s=/]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

function unescapeXml(v: string): string {
  return v.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (_m, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

function resolve(prefix: string, own: Map<string, string>, stack: Frame[]): string | undefined {
  if (own.has(prefix)) return own.get(prefix);
  for (let k = stack.length - 1; k >= 0; k--)
    if (stack[k].decls.has(prefix)) return stack[k].decls.get(prefix);
  return undefined;
}

/**
 * Every top-level saml2:Assertion (SAML 2.0 namespace, any prefix) in `xml`, in document order, as
 * standalone XML strings. Assertions nested inside another Assertion (Advice) are not returned
 * separately. Throws XuaError('malformed') when `xml` is not well-formed or has a DOCTYPE.
 *
 * A caller accepting XUA should require exactly one result: several Assertions in one Security
 * header leave it ambiguous which one authorises the request.
 */
export function findAssertions(xml: string): string[] {
  parseXmlStrict(xml, MAX_HEADER_CHARS);
  const out: string[] = [];
  const stack: Frame[] = [];
  let current: { start: number; depth: number; insertAt: number; extra: string } | undefined;
  let i = 0;
  for (;;) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) break;
    // The text is known to be well-formed, so every construct below is terminated; the `< 0`
    // guards only keep the scanner finite should that assumption ever break.
    const skipTo = (terminator: string, from: number): number => {
      const k = xml.indexOf(terminator, from);
      if (k < 0) throw new XuaError('malformed', `unterminated markup at offset ${lt}`);
      return k + terminator.length;
    };
    if (xml.startsWith('<!--', lt)) {
      i = skipTo('-->', lt + 4);
      continue;
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      i = skipTo(']]>', lt + 9);
      continue;
    }
    if (xml.startsWith('<?', lt)) {
      i = skipTo('?>', lt + 2);
      continue;
    }
    if (xml[lt + 1] === '/') {
      const gt = skipTo('>', lt) - 1;
      stack.pop();
      if (current && stack.length === current.depth) {
        out.push(
          xml.slice(current.start, current.insertAt) + current.extra + xml.slice(current.insertAt, gt + 1),
        );
        current = undefined;
      }
      i = gt + 1;
      continue;
    }
    // Start tag: find its '>' outside attribute quotes.
    let j = lt + 1;
    let quote = '';
    for (; j < xml.length; j++) {
      const c = xml[j];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '>') break;
    }
    if (j >= xml.length) throw new XuaError('malformed', `unterminated start tag at offset ${lt}`);
    const body = xml.slice(lt + 1, j);
    const selfClosing = body.endsWith('/');
    const name = /^[^\s/>]+/.exec(body)?.[0] ?? '';
    const decls = new Map<string, string>();
    for (const m of body.slice(name.length).matchAll(ATTRIBUTE)) {
      const value = m[2] ?? m[3] ?? '';
      if (m[1] === 'xmlns') decls.set('', value);
      else if (m[1].startsWith('xmlns:')) decls.set(m[1].slice(6), value);
    }
    const colon = name.indexOf(':');
    const prefix = colon > 0 ? name.slice(0, colon) : '';
    const local = colon > 0 ? name.slice(colon + 1) : name;
    if (!current && local === 'Assertion') {
      const ns = resolve(prefix, decls, stack);
      if (ns !== undefined && unescapeXml(ns) === NS_SAML2) {
        const inherited = new Map<string, string>();
        for (const frame of stack) for (const [p, v] of frame.decls) inherited.set(p, v);
        for (const p of decls.keys()) inherited.delete(p);
        let extra = '';
        for (const [p, v] of inherited) {
          if (p === '' && v === '') continue;
          const quoted = v.replace(/"/g, '&quot;');
          extra += p ? ` xmlns:${p}="${quoted}"` : ` xmlns="${quoted}"`;
        }
        current = { start: lt, depth: stack.length, insertAt: lt + 1 + name.length, extra };
        if (selfClosing) {
          out.push(xml.slice(lt, current.insertAt) + extra + xml.slice(current.insertAt, j + 1));
          current = undefined;
        }
      }
    }
    if (!selfClosing) stack.push({ decls });
    i = j + 1;
  }
  return out;
}
