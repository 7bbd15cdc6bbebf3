import type { XmlDocument, XmlElement } from './parse';

const TEXT_ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };
const ATTR_ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** Escapes character data. Characters not allowed in XML 1.0 are dropped. */
export function escapeText(v: string): string {
  return stripInvalid(v).replace(/[&<>]/g, (c) => TEXT_ESC[c]);
}

/** Escapes an attribute value for double quotes; whitespace controls become references. */
export function escapeAttr(v: string): string {
  return stripInvalid(v)
    .replace(/[&<>"]/g, (c) => ATTR_ESC[c])
    .replace(/[\t\n\r]/g, (c) => `&#x${c.charCodeAt(0).toString(16)};`);
}

const INVALID_XML_CHARS =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function stripInvalid(v: string): string {
  return INVALID_XML_CHARS.test(v) ? v.replace(INVALID_XML_CHARS, '') : v;
}

/** `name="value"` pairs for a start tag; undefined values are left out. */
export function attrs(a: Record<string, string | number | boolean | undefined>): string {
  let out = '';
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out += ` ${k}="${escapeAttr(String(v))}"`;
  return out;
}

/** An element with escaped text content. */
export function textElement(
  qname: string,
  text: string,
  attributes: Record<string, string | undefined> = {},
): string {
  return `<${qname}${attrs(attributes)}>${escapeText(text)}</${qname}>`;
}

/** Attribute edits for one start tag: a string sets (adds or replaces), null removes. */
export type AttributeEdits = Record<string, string | null>;

export interface RelayOptions {
  /** Edits (no-namespace attributes) on the relayed element's own start tag. */
  setAttributes?: AttributeEdits;
  /** Edits on descendants' start tags; everything else is copied from the source unchanged. */
  descendantEdits?: Map<XmlElement, AttributeEdits>;
  /** Descendants whose content is replaced (serialised XML; their own start and end tags are kept). */
  contentEdits?: Map<XmlElement, string>;
}

/**
 * The element as self-contained XML: its start tag is rewritten to carry every in-scope namespace
 * binding it relies on (and any attribute edits); everything inside is copied from the source
 * unchanged. This is how RegistryObjects are relayed byte-exact into another document.
 */
export function relayElement(doc: XmlDocument, el: XmlElement, opts: RelayOptions = {}): string {
  // Every in-scope binding is redeclared (not only the used ones): attribute values such as
  // xsi:type may name prefixes too, and a spare declaration is harmless.
  let ns = '';
  for (const [prefix, uri] of el.scope) {
    if (prefix === 'xml') continue;
    ns += prefix === '' ? ` xmlns="${escapeAttr(uri)}"` : ` xmlns:${prefix}="${escapeAttr(uri)}"`;
  }
  // No default namespace in scope here: undeclare any default of the document we are pasted into.
  if (!el.scope.has('')) ns += ' xmlns=""';
  const open = startTag(el, ns, opts.setAttributes ?? {});
  if (el.selfClosing) return open;
  const edits = opts.descendantEdits ?? new Map<XmlElement, AttributeEdits>();
  const contents = opts.contentEdits ?? new Map<XmlElement, string>();
  if (edits.size === 0 && contents.size === 0) return open + doc.source.slice(el.startTagEnd, el.end);
  const targets = [...new Set([...edits.keys(), ...contents.keys()])]
    .filter((d) => d.start > el.start && d.end <= el.end)
    .sort((a, b) => a.start - b.start);
  let out = open;
  let pos = el.startTagEnd;
  for (const d of targets) {
    if (d.start < pos) continue; // inside content already replaced
    const tag = edits.has(d)
      ? startTag(d, ownDeclarations(d), edits.get(d) ?? {})
      : doc.source.slice(d.start, d.startTagEnd);
    out += doc.source.slice(pos, d.start) + tag;
    pos = d.startTagEnd;
    const content = d.selfClosing ? undefined : contents.get(d);
    if (content !== undefined) {
      out += content;
      pos = d.endTagStart;
    }
  }
  return out + doc.source.slice(pos, el.end);
}

function ownDeclarations(el: XmlElement): string {
  let ns = '';
  for (const [prefix, uri] of el.nsDeclarations) {
    ns += prefix === '' ? ` xmlns="${escapeAttr(uri)}"` : ` xmlns:${prefix}="${escapeAttr(uri)}"`;
  }
  return ns;
}

function startTag(el: XmlElement, nsDecls: string, edits: AttributeEdits): string {
  let tag = `<${el.qname}${nsDecls}`;
  for (const a of el.attributes) {
    if (a.ns === '' && Object.prototype.hasOwnProperty.call(edits, a.local)) continue;
    tag += ` ${a.qname}="${a.raw.replace(/"/g, '&quot;')}"`;
  }
  for (const [k, v] of Object.entries(edits)) if (v !== null) tag += ` ${k}="${escapeAttr(v)}"`;
  return tag + (el.selfClosing ? '/>' : '>');
}

/** The element exactly as in the source (namespace bindings from ancestors are not added). */
export function sourceOf(doc: XmlDocument, el: XmlElement): string {
  return doc.source.slice(el.start, el.end);
}
