import { isUtf8 } from 'node:buffer';

/**
 * A small, strict, namespace-aware XML parser for SOAP traffic.
 *
 * Why not a general-purpose parser: we need (a) no DTD machinery at all — a DOCTYPE or entity
 * declaration is refused outright, so XXE and entity bombs cannot happen; (b) hard limits on size,
 * depth, attribute and text length and element count; (c) namespace resolution, because real peers
 * use every prefix imaginable; and (d) source offsets, so RegistryObjects can be relayed byte-exact
 * (only the start tag is rewritten to stamp `home`) instead of being re-serialised.
 */

export interface XmlLimits {
  /** Maximum UTF-8 bytes of the document. */
  maxBytes: number;
  maxDepth: number;
  maxAttributeLength: number;
  maxAttributesPerElement: number;
  /** Maximum length (characters) of one text node; inline base64 documents need more. */
  maxTextLength: number;
  maxElements: number;
  /**
   * Elements nested deeper than this (the root is level 1) are checked like all others but not
   * kept in the tree. A gateway relaying RegistryObjects byte-exact needs only the objects
   * themselves; not keeping their insides makes a large answer cheap to parse.
   */
  treeDepth: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = {
  maxBytes: 4 * 1024 * 1024,
  maxDepth: 64,
  maxAttributeLength: 16 * 1024,
  maxAttributesPerElement: 64,
  maxTextLength: 1024 * 1024,
  maxElements: 200_000,
  treeDepth: Number.MAX_SAFE_INTEGER,
};

export type XmlErrorCode =
  | 'too-large'
  | 'too-deep'
  | 'too-many-elements'
  | 'attribute-too-long'
  | 'too-many-attributes'
  | 'text-too-long'
  | 'dtd-forbidden'
  | 'bad-encoding'
  | 'malformed';

export class XmlError extends Error {
  constructor(
    readonly code: XmlErrorCode,
    message: string,
    readonly offset?: number,
  ) {
    super(message);
    this.name = 'XmlError';
  }
}

export interface XmlAttribute {
  ns: string;
  local: string;
  /** Qualified name as written. */
  qname: string;
  /** Decoded value. */
  value: string;
  /** The value as written in the source (still escaped). */
  raw: string;
}

/** In-scope namespace bindings: prefix ('' = default) → URI. Shared by elements that declare nothing. */
export type NsScope = ReadonlyMap<string, string>;

export class XmlElement {
  readonly children: XmlElement[] = [];
  /** Concatenated decoded text of the direct text and CDATA children. */
  text = '';
  /** Offset just after the start tag's '>'. */
  startTagEnd = 0;
  /** Offset of the end tag's '<' (equals startTagEnd for an empty element). */
  endTagStart = 0;
  /** Offset just after the element. */
  end = 0;
  selfClosing = false;

  constructor(
    readonly ns: string,
    readonly local: string,
    readonly qname: string,
    readonly attributes: XmlAttribute[],
    /** Namespace declarations made on this element (prefix → URI). */
    readonly nsDeclarations: ReadonlyMap<string, string>,
    readonly scope: NsScope,
    /** Offset of the start tag's '<'. */
    readonly start: number,
    readonly parent: XmlElement | undefined,
  ) {}

  is(ns: string, local: string): boolean {
    return this.local === local && this.ns === ns;
  }

  child(ns: string, local: string): XmlElement | undefined {
    for (const c of this.children) if (c.local === local && c.ns === ns) return c;
    return undefined;
  }

  childrenNamed(ns: string, local: string): XmlElement[] {
    return this.children.filter((c) => c.local === local && c.ns === ns);
  }

  /** Attribute value by local name (no namespace unless given). */
  attr(local: string, ns = ''): string | undefined {
    for (const a of this.attributes) if (a.local === local && a.ns === ns) return a.value;
    return undefined;
  }

  /** Text content trimmed of surrounding whitespace. */
  trimmedText(): string {
    return this.text.trim();
  }

  /** All descendants (depth-first) with the given name. */
  descendants(ns: string, local: string, out: XmlElement[] = []): XmlElement[] {
    for (const c of this.children) {
      if (c.local === local && c.ns === ns) out.push(c);
      c.descendants(ns, local, out);
    }
    return out;
  }
}

export interface XmlDocument {
  source: string;
  root: XmlElement;
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';
const EMPTY_SCOPE: NsScope = new Map([['xml', XML_NS]]);
const NO_DECLARATIONS: ReadonlyMap<string, string> = new Map();
const NO_ATTRIBUTES: XmlAttribute[] = [];
const ATTR_WS = /[\t\n\r]/;

/** Parses UTF-8 bytes (or an already decoded string) into a namespace-resolved element tree. */
export function parseXml(input: Buffer | Uint8Array | string, limits: Partial<XmlLimits> = {}): XmlDocument {
  const lim: XmlLimits = { ...DEFAULT_XML_LIMITS, ...limits };
  let source: string;
  if (typeof input === 'string') {
    if (input.length > lim.maxBytes) throw new XmlError('too-large', `XML larger than ${lim.maxBytes} bytes`);
    source = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  } else {
    if (input.length > lim.maxBytes) throw new XmlError('too-large', `XML larger than ${lim.maxBytes} bytes`);
    if (
      input.length >= 2 &&
      ((input[0] === 0xfe && input[1] === 0xff) || (input[0] === 0xff && input[1] === 0xfe))
    ) {
      throw new XmlError('bad-encoding', 'only UTF-8 is accepted (UTF-16 byte order mark found)');
    }
    const buf = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (!isUtf8(buf)) throw new XmlError('bad-encoding', 'the message is not valid UTF-8');
    source = buf.toString('utf8');
    if (source.charCodeAt(0) === 0xfeff) source = source.slice(1);
  }
  // XML 1.0 §2.2: C0 controls other than tab, LF, CR (and U+FFFE/U+FFFF) are not characters of a
  // document; accepting them would let them reach logs and audit records.
  if (ILLEGAL_CHARACTER.test(source))
    throw new XmlError('malformed', 'control character not allowed in XML 1.0');
  return new Parser(source, lim).parse();
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const ILLEGAL_CHARACTER = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;

class Parser {
  private pos = 0;
  private depth = 0;
  private elements = 0;

  constructor(
    private readonly s: string,
    private readonly lim: XmlLimits,
  ) {}

  parse(): XmlDocument {
    const s = this.s;
    this.prolog();
    if (s.charCodeAt(this.pos) !== 0x3c) this.fail('malformed', 'no root element');
    const stack: XmlElement[] = [];
    let root: XmlElement | undefined;
    let textStart = this.pos;
    while (true) {
      const lt = s.indexOf('<', this.pos);
      const top = stack[stack.length - 1];
      if (lt < 0) {
        if (top) this.fail('malformed', `unexpected end of document inside <${top.qname}>`);
        this.trailingMisc(this.pos);
        break;
      }
      if (lt > this.pos) {
        if (top) this.text(top, this.pos, lt);
        else if (root) this.trailingMisc(this.pos, lt);
      }
      this.pos = lt;
      const c1 = s.charCodeAt(lt + 1);
      if (c1 === 0x2f /* / */) {
        if (!top) this.fail('malformed', 'end tag without start tag');
        const nameEnd = this.nameEnd(lt + 2);
        const qname = s.slice(lt + 2, nameEnd);
        if (qname !== top.qname) this.fail('malformed', `end tag </${qname}> does not match <${top.qname}>`);
        let p = this.skipWs(nameEnd);
        if (s.charCodeAt(p) !== 0x3e) this.fail('malformed', `bad end tag </${qname}`);
        p++;
        top.endTagStart = lt;
        top.end = p;
        stack.pop();
        this.depth--;
        this.pos = p;
        if (stack.length === 0) {
          this.trailingMisc(p);
          break;
        }
      } else if (c1 === 0x21 /* ! */) {
        if (s.startsWith('<!--', lt)) {
          this.pos = this.commentEnd(lt);
        } else if (s.startsWith('<![CDATA[', lt)) {
          if (!top) this.fail('malformed', 'CDATA outside the root element');
          const e = s.indexOf(']]>', lt + 9);
          if (e < 0) this.fail('malformed', 'unterminated CDATA section');
          this.appendText(top, s.slice(lt + 9, e));
          this.pos = e + 3;
        } else {
          this.fail('dtd-forbidden', 'DOCTYPE and entity declarations are not allowed');
        }
      } else if (c1 === 0x3f /* ? */) {
        const e = s.indexOf('?>', lt + 2);
        if (e < 0) this.fail('malformed', 'unterminated processing instruction');
        this.pos = e + 2;
      } else {
        if (root && stack.length === 0) this.fail('malformed', 'more than one root element');
        const el = this.startTag(top);
        if (!root) root = el;
        if (top && this.depth < this.lim.treeDepth) top.children.push(el);
        if (!el.selfClosing) {
          stack.push(el);
          this.depth++;
          if (this.depth > this.lim.maxDepth)
            this.fail('too-deep', `nesting deeper than ${this.lim.maxDepth}`);
        } else if (stack.length === 0) {
          this.trailingMisc(el.end);
          break;
        }
      }
      textStart = this.pos;
    }
    void textStart;
    if (!root) this.fail('malformed', 'no root element');
    return { source: s, root };
  }

  private prolog(): void {
    const s = this.s;
    this.pos = this.skipWs(0);
    if (s.startsWith('<?xml', this.pos) && /\s/.test(s.charAt(this.pos + 5))) {
      const e = s.indexOf('?>', this.pos);
      if (e < 0) this.fail('malformed', 'unterminated XML declaration');
      const decl = s.slice(this.pos, e);
      const version = /^<\?xml\s+version\s*=\s*(["'])([^"']*)\1/.exec(decl);
      if (!version) this.fail('malformed', 'the XML declaration has no version');
      // XML 1.1 differs in characters and line ends (NEL, C1 controls); we read XML 1.0 only.
      if (version[2] !== '1.0')
        this.fail('malformed', `XML version ${version[2].slice(0, 10)} is not supported (1.0 only)`);
      const enc = /encoding\s*=\s*["']([^"']+)["']/.exec(decl);
      if (enc && !/^utf-?8$/i.test(enc[1])) {
        throw new XmlError('bad-encoding', `only UTF-8 is accepted (declared ${enc[1]})`);
      }
      this.pos = e + 2;
    }
    // Comments, PIs and whitespace may precede the root; a DOCTYPE may not.
    while (true) {
      this.pos = this.skipWs(this.pos);
      if (s.startsWith('<!--', this.pos)) {
        this.pos = this.commentEnd(this.pos);
      } else if (s.startsWith('<?', this.pos)) {
        const e = s.indexOf('?>', this.pos + 2);
        if (e < 0) this.fail('malformed', 'unterminated processing instruction');
        this.pos = e + 2;
      } else if (s.startsWith('<!', this.pos)) {
        this.fail('dtd-forbidden', 'DOCTYPE and entity declarations are not allowed');
      } else {
        return;
      }
    }
  }

  /**
   * End of the comment starting at `lt` (after its `-->`). XML 1.0 §2.5: `--` may not occur inside
   * a comment, and a comment may not end with `--->`.
   */
  private commentEnd(lt: number): number {
    const e = this.s.indexOf('--', lt + 4);
    if (e < 0) this.fail('malformed', 'unterminated comment');
    if (this.s.charCodeAt(e + 2) !== 0x3e) this.fail('malformed', "'--' is not allowed inside a comment");
    return e + 3;
  }

  /** After the root: only whitespace, comments and PIs. */
  private trailingMisc(from: number, to = this.s.length): void {
    const s = this.s;
    let p = from;
    while (p < to) {
      p = this.skipWs(p);
      if (p >= to) break;
      if (s.startsWith('<!--', p)) {
        p = this.commentEnd(p);
      } else if (s.startsWith('<?', p)) {
        const e = s.indexOf('?>', p + 2);
        if (e < 0) this.fail('malformed', 'unterminated processing instruction');
        p = e + 2;
      } else if (s.startsWith('<!', p)) {
        this.fail('dtd-forbidden', 'DOCTYPE and entity declarations are not allowed');
      } else {
        this.fail('malformed', 'content after the root element');
      }
    }
    this.pos = to;
  }

  private startTag(parent: XmlElement | undefined): XmlElement {
    const s = this.s;
    const start = this.pos;
    const nameEnd = this.nameEnd(start + 1);
    if (nameEnd === start + 1) this.fail('malformed', 'element without a name');
    const qname = s.slice(start + 1, nameEnd);
    let p = nameEnd;
    // Attributes are collected once, namespace-resolved after the declarations of this tag are
    // known; no per-element scratch collections (a large answer has tens of thousands of elements).
    let attributes: XmlAttribute[] = NO_ATTRIBUTES;
    let decls: Map<string, string> | undefined;
    let count = 0;
    let selfClosing = false;
    while (true) {
      const afterWs = this.skipWs(p);
      const c = s.charCodeAt(afterWs);
      if (c === 0x3e /* > */) {
        p = afterWs + 1;
        break;
      }
      if (c === 0x2f /* / */ && s.charCodeAt(afterWs + 1) === 0x3e) {
        selfClosing = true;
        p = afterWs + 2;
        break;
      }
      if (Number.isNaN(c)) this.fail('malformed', `unterminated start tag <${qname}`);
      if (afterWs === p) this.fail('malformed', `missing whitespace between attributes in <${qname}>`);
      const an = this.nameEnd(afterWs);
      if (an === afterWs) this.fail('malformed', `bad attribute in <${qname}>`);
      const aq = s.slice(afterWs, an);
      let q = this.skipWs(an);
      if (s.charCodeAt(q) !== 0x3d /* = */) this.fail('malformed', `attribute ${aq} without a value`);
      q = this.skipWs(q + 1);
      const quote = s.charCodeAt(q);
      if (quote !== 0x22 && quote !== 0x27) this.fail('malformed', `attribute ${aq} value not quoted`);
      const close = s.indexOf(quote === 0x22 ? '"' : "'", q + 1);
      if (close < 0) this.fail('malformed', `unterminated attribute ${aq}`);
      if (close - q - 1 > this.lim.maxAttributeLength) {
        this.fail('attribute-too-long', `attribute ${aq} longer than ${this.lim.maxAttributeLength}`);
      }
      const raw = s.slice(q + 1, close);
      if (raw.includes('<')) this.fail('malformed', `'<' in the value of attribute ${aq}`);
      if (++count > this.lim.maxAttributesPerElement) {
        this.fail(
          'too-many-attributes',
          `more than ${this.lim.maxAttributesPerElement} attributes on <${qname}>`,
        );
      }
      const value = raw.includes('&') || ATTR_WS.test(raw) ? decodeEntities(raw, true, this) : raw;
      if (aq === 'xmlns' || aq.startsWith('xmlns:')) {
        const prefix = aq === 'xmlns' ? '' : aq.slice(6);
        if (prefix === 'xmlns' || (prefix !== '' && value === '')) {
          this.fail('malformed', `bad namespace declaration ${aq}`);
        }
        decls ??= new Map();
        if (decls.has(prefix)) this.fail('malformed', `duplicate namespace declaration ${aq}`);
        decls.set(prefix, value);
      } else {
        if (attributes === NO_ATTRIBUTES) attributes = [];
        attributes.push({ ns: '', local: aq, qname: aq, value, raw });
      }
      p = close + 1;
    }
    if (++this.elements > this.lim.maxElements) {
      this.fail('too-many-elements', `more than ${this.lim.maxElements} elements`);
    }

    const parentScope = parent ? parent.scope : EMPTY_SCOPE;
    let scope: NsScope = parentScope;
    if (decls) {
      const m = new Map(parentScope);
      for (const [k, v] of decls) {
        if (k === '' && v === '') m.delete('');
        else m.set(k, v);
      }
      scope = m;
    }
    const ec = colonOf(qname);
    const elocal = ec < 0 ? qname : qname.slice(ec + 1);
    const ens = ec < 0 ? (scope.get('') ?? '') : scope.get(qname.slice(0, ec));
    if (ens === undefined)
      this.fail('malformed', `undeclared namespace prefix '${qname.slice(0, ec)}' on <${qname}>`);
    for (let i = 0; i < attributes.length; i++) {
      const a = attributes[i];
      const ac = colonOf(a.qname);
      if (ac >= 0) {
        const ans = scope.get(a.qname.slice(0, ac));
        if (ans === undefined)
          this.fail(
            'malformed',
            `undeclared namespace prefix '${a.qname.slice(0, ac)}' on attribute ${a.qname}`,
          );
        a.ns = ans;
        a.local = a.qname.slice(ac + 1);
      }
      for (let j = 0; j < i; j++) {
        if (attributes[j].local === a.local && attributes[j].ns === a.ns) {
          this.fail('malformed', `duplicate attribute ${a.qname} on <${qname}>`);
        }
      }
    }
    const el = new XmlElement(ens, elocal, qname, attributes, decls ?? NO_DECLARATIONS, scope, start, parent);
    el.startTagEnd = p;
    el.selfClosing = selfClosing;
    if (selfClosing) {
      el.endTagStart = p;
      el.end = p;
    }
    this.pos = p;
    return el;
  }

  private text(el: XmlElement, from: number, to: number): void {
    const raw = this.s.slice(from, to);
    if (raw.includes(']]>')) this.fail('malformed', "']]>' in text");
    this.appendText(el, raw.includes('&') ? decodeEntities(raw, false, this) : raw);
  }

  private appendText(el: XmlElement, t: string): void {
    if (el.text.length + t.length > this.lim.maxTextLength) {
      this.fail('text-too-long', `text in <${el.qname}> longer than ${this.lim.maxTextLength}`);
    }
    el.text += t.includes('\r') ? t.replace(/\r\n?/g, '\n') : t;
  }

  private skipWs(p: number): number {
    const s = this.s;
    while (p < s.length) {
      const c = s.charCodeAt(p);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    return p;
  }

  private nameEnd(p: number): number {
    const s = this.s;
    const start = p;
    while (p < s.length) {
      const c = s.charCodeAt(p);
      if (
        c === 0x20 ||
        c === 0x0a ||
        c === 0x0d ||
        c === 0x09 ||
        c === 0x3e || // >
        c === 0x2f || // /
        c === 0x3d || // =
        c === 0x3c || // <
        c === 0x22 ||
        c === 0x27 ||
        c === 0x26 // &
      ) {
        break;
      }
      p++;
    }
    if (p > start) {
      const c0 = s.charCodeAt(start);
      if ((c0 >= 0x30 && c0 <= 0x39) || c0 === 0x2d || c0 === 0x2e) {
        this.fail('malformed', `bad name '${s.slice(start, p)}'`);
      }
    }
    return p;
  }

  fail(code: XmlErrorCode, message: string): never {
    throw new XmlError(code, `${message} (at offset ${this.pos})`, this.pos);
  }
}

/** Index of the prefix colon of a qualified name, -1 without prefix; malformed names are refused. */
function colonOf(q: string): number {
  const i = q.indexOf(':');
  if (i < 0) return -1;
  if (i === 0 || i === q.length - 1 || q.indexOf(':', i + 1) >= 0) {
    throw new XmlError('malformed', `bad qualified name '${q}'`);
  }
  return i;
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

/** Decodes the five predefined entities and character references; anything else is an error. */
function decodeEntities(
  raw: string,
  attribute: boolean,
  p: { fail(c: XmlErrorCode, m: string): never },
): string {
  let v = raw;
  if (attribute && /[\t\n\r]/.test(v)) v = v.replace(/\r\n|[\t\n\r]/g, ' ');
  if (!v.includes('&')) return v;
  return v.replace(/&([^;&\s]{0,12});?/g, (m, name: string) => {
    if (!m.endsWith(';')) p.fail('malformed', `unterminated entity reference '${m}'`);
    if (name.startsWith('#')) {
      const cp = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (
        !/^#(x[0-9a-fA-F]+|[0-9]+)$/.test(name) ||
        !Number.isFinite(cp) ||
        cp > 0x10ffff ||
        (cp < 0x20 && cp !== 0x9 && cp !== 0xa && cp !== 0xd) ||
        (cp >= 0xd800 && cp <= 0xdfff)
      ) {
        p.fail('malformed', `bad character reference '${m}'`);
      }
      return String.fromCodePoint(cp);
    }
    const r = PREDEFINED[name];
    if (r === undefined) p.fail('malformed', `undefined entity '&${name};' (entities are not supported)`);
    return r;
  });
}

export { XML_NS, XMLNS_NS };
