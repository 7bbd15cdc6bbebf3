/**
 * Defensive XML → DOM parsing and small DOM helpers for XUA assertion handling.
 *
 * The gateway's own parser already refuses any DOCTYPE before an assertion reaches this module; this
 * layer repeats the checks so it is safe on its own: no DTD (so no external or internal entities),
 * no processing instructions, bounded size, depth and node count, strict well-formedness (every
 * xmldom warning or error aborts parsing).
 */

import { DOMParser, type Document, type Element, type Node } from '@xmldom/xmldom';
import { XuaError } from './errors';

export const NS_SAML2 = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const NS_DS = 'http://www.w3.org/2000/09/xmldsig#';
export const NS_EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const NS_XMLNS = 'http://www.w3.org/2000/xmlns/';

/** Upper bound for one assertion (real XUA assertions are 4–20 KiB including certificates). */
export const MAX_ASSERTION_CHARS = 256 * 1024;
/** Upper bound for a security header / envelope handed to findAssertions. */
export const MAX_HEADER_CHARS = 4 * 1024 * 1024;
const MAX_DEPTH = 48;
const MAX_NODES = 20_000;

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;
const ENTITY_REFERENCE_NODE = 5;
const ENTITY_NODE = 6;
const PROCESSING_INSTRUCTION_NODE = 7;
const COMMENT_NODE = 8;
const DOCUMENT_TYPE_NODE = 10;

const DTD_MARKUP = /<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;

/** XML 1.0 end-of-line handling (§2.11): CRLF and lone CR become LF — nothing else. */
function normalizeXml10LineEndings(source: string): string {
  return source.replace(/\r\n?/g, '\n');
}

/**
 * Parses `xml` into a DOM with DTDs, entities and processing instructions refused.
 * Throws XuaError('malformed') on anything unexpected.
 */
export function parseXmlStrict(xml: string, maxChars: number = MAX_ASSERTION_CHARS): Document {
  if (typeof xml !== 'string' || xml.length === 0) throw new XuaError('malformed', 'empty XML');
  if (xml.length > maxChars) throw new XuaError('malformed', `XML larger than ${maxChars} characters`);
  if (DTD_MARKUP.test(xml)) throw new XuaError('malformed', 'DOCTYPE / DTD declarations are not allowed');
  let doc: Document;
  try {
    const parser = new DOMParser({
      locator: false,
      normalizeLineEndings: normalizeXml10LineEndings,
      onError: (level, msg) => {
        // Warnings too: xmldom reports recoverable well-formedness violations as warnings.
        throw new Error(`${level}: ${msg}`);
      },
    });
    doc = parser.parseFromString(xml, 'application/xml');
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new XuaError('malformed', `XML is not well-formed: ${detail.slice(0, 200)}`);
  }
  if (!doc || !doc.documentElement) throw new XuaError('malformed', 'XML has no document element');
  checkTree(doc);
  return doc;
}

/** Iterative walk: refuses DTD-related and PI nodes, bounds depth and node count. */
function checkTree(doc: Document): void {
  let count = 0;
  const stack: { node: Node; depth: number }[] = [{ node: doc, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (++count > MAX_NODES) throw new XuaError('malformed', 'too many XML nodes');
    switch (node.nodeType) {
      case DOCUMENT_TYPE_NODE:
      case ENTITY_NODE:
      case ENTITY_REFERENCE_NODE:
        throw new XuaError('malformed', 'DOCTYPE / entities are not allowed');
      case PROCESSING_INSTRUCTION_NODE:
        // xmldom surfaces the XML declaration as a PI named "xml" at document level; any other PI
        // is refused (exclusive c14n implementations disagree on how to render them).
        if (node.nodeName === 'xml' && node.parentNode === doc && node === doc.firstChild) break;
        throw new XuaError('malformed', 'processing instructions are not allowed');
      default:
        break;
    }
    if (depth > MAX_DEPTH) throw new XuaError('malformed', `XML nested deeper than ${MAX_DEPTH}`);
    for (let c = node.firstChild; c; c = c.nextSibling) stack.push({ node: c, depth: depth + 1 });
  }
}

export function isElement(node: Node | null | undefined): node is Element {
  return !!node && node.nodeType === ELEMENT_NODE;
}

export function isNamed(el: Element, ns: string, local: string): boolean {
  return el.localName === local && (el.namespaceURI ?? '') === ns;
}

/** Direct element children. */
export function childElements(el: Element): Element[] {
  const out: Element[] = [];
  for (let c = el.firstChild; c; c = c.nextSibling) if (isElement(c)) out.push(c);
  return out;
}

export function childrenNamed(el: Element, ns: string, local: string): Element[] {
  return childElements(el).filter((c) => isNamed(c, ns, local));
}

/** The single child with this name; undefined if none; XuaError('malformed') if several. */
export function optionalChild(el: Element, ns: string, local: string): Element | undefined {
  const found = childrenNamed(el, ns, local);
  if (found.length > 1) throw new XuaError('malformed', `more than one ${local} in ${el.localName}`);
  return found[0];
}

export function requiredChild(el: Element, ns: string, local: string): Element {
  const found = optionalChild(el, ns, local);
  if (!found) throw new XuaError('malformed', `${el.localName} has no ${local}`);
  return found;
}

/** Every descendant element (document order, iterative). */
export function descendantElements(root: Element): Element[] {
  const out: Element[] = [];
  const stack: Element[] = [root];
  while (stack.length > 0) {
    const el = stack.pop()!;
    out.push(el);
    const kids = childElements(el);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
  }
  return out;
}

/**
 * The character content of an element: all descendant text and CDATA, comments skipped.
 *
 * This matches what exclusive canonicalization (without comments) signs. Reading only the first
 * text node instead would open the comment-truncation attack (`admin<!---->@evil`), where the
 * signed value and the value read differ.
 */
export function textContent(el: Element): string {
  let out = '';
  const stack: Node[] = [el];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.nodeType === TEXT_NODE || node.nodeType === CDATA_SECTION_NODE) {
      out += (node as unknown as { data: string }).data;
    } else if (node.nodeType === ELEMENT_NODE) {
      const kids: Node[] = [];
      for (let c = node.firstChild; c; c = c.nextSibling) if (c.nodeType !== COMMENT_NODE) kids.push(c);
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
    }
  }
  return out;
}

/** Attribute without namespace; undefined when absent. */
export function attr(el: Element, local: string): string | undefined {
  const a = el.getAttributeNode(local);
  return a && !a.namespaceURI ? a.value : undefined;
}

/**
 * Namespace bindings declared on the ancestors of `el` (nearest declaration wins), in the shape the
 * exclusive canonicalizer expects for InclusiveNamespaces prefixes.
 */
export function ancestorNamespaces(el: Element): { prefix: string; namespaceURI: string }[] {
  const seen = new Set<string>();
  const out: { prefix: string; namespaceURI: string }[] = [];
  for (let p = el.parentNode; p && isElement(p); p = p.parentNode) {
    const attrs = p.attributes;
    for (let i = 0; i < attrs.length; i++) {
      const a = attrs.item(i);
      if (!a || a.namespaceURI !== NS_XMLNS || a.prefix !== 'xmlns' || !a.localName) continue;
      const prefix = a.localName;
      if (seen.has(prefix)) continue;
      seen.add(prefix);
      out.push({ prefix, namespaceURI: a.value });
    }
  }
  return out;
}
