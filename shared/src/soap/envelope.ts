import { flatCopy } from '../util/intern';
import { parseXml, XmlError, type XmlDocument, type XmlElement, type XmlLimits } from '../xml/parse';
import { NS } from '../xml/ns';
import { escapeText, relayElement } from '../xml/write';
import { SoapFault } from './fault';
import { newMessageId, WSA_ANONYMOUS } from './ids';

/** WS-Addressing 1.0 message addressing properties. */
export interface Addressing {
  action?: string;
  messageId?: string;
  to?: string;
  /** wsa:ReplyTo/wsa:Address; absent means anonymous. */
  replyTo?: string;
  faultTo?: string;
  relatesTo?: string;
}

export interface SoapEnvelope {
  doc: XmlDocument;
  header?: XmlElement;
  /** The single child of soap:Body. */
  payload: XmlElement;
  wsa: Addressing;
  /** wsse:Security header block, when present. */
  security?: XmlElement;
}

/** Header blocks this product understands (others flagged mustUnderstand are refused). */
const UNDERSTOOD = new Set<string>([NS.wsa, NS.wsse, NS.wsu]);

/** SOAP 1.2 roles (Part 1 §2.2). We act in `next` and, for every message we receive, `ultimateReceiver`. */
export const SOAP_ROLE = {
  next: `${NS.soap}/role/next`,
  none: `${NS.soap}/role/none`,
  ultimateReceiver: `${NS.soap}/role/ultimateReceiver`,
} as const;

/**
 * Is a header block targeted at this node (SOAP 1.2 Part 1 §2.2, §5.2.2)? No `role` means
 * ultimateReceiver. Blocks for `none` or for any other role are not processed at all — neither read
 * nor checked for mustUnderstand (§5.2.3: only targeted blocks can cause a MustUnderstand fault).
 */
function targetedAtUs(h: XmlElement): boolean {
  const role = h.attr('role', NS.soap);
  if (role === undefined) return true;
  const r = role.trim();
  return r === SOAP_ROLE.next || r === SOAP_ROLE.ultimateReceiver;
}

/** The value of an xs:boolean attribute (whitespace collapsed), or a Sender fault naming it. */
function xsBoolean(value: string, what: string): boolean {
  const v = value.trim();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw SoapFault.sender(
    `${what} must be an xs:boolean (true, false, 1 or 0), not ${JSON.stringify(value.slice(0, 40))}`,
  );
}

/** SOAP 1.2 Part 1 §5.1.1: encodingStyle may not appear on Envelope, Header or Body. */
function noEncodingStyle(el: XmlElement): void {
  if (el.attr('encodingStyle', NS.soap) !== undefined)
    throw SoapFault.sender(`soap:encodingStyle is not allowed on soap:${el.local} (SOAP 1.2 Part 1 §5.1.1)`);
}

export interface EnvelopeParts {
  root: XmlElement;
  header?: XmlElement;
  body?: XmlElement;
}

/** Root checks shared by the full decoder and the head decoder. */
function envelopeRoot(doc: XmlDocument): XmlElement {
  const root = doc.root;
  if (root.local === 'Envelope' && root.ns === NS.soap11) {
    throw new SoapFault('VersionMismatch', 'SOAP 1.1 is not supported; IHE web services use SOAP 1.2');
  }
  if (!root.is(NS.soap, 'Envelope')) {
    throw new SoapFault('VersionMismatch', `not a SOAP 1.2 envelope (root is {${root.ns}}${root.local})`);
  }
  noEncodingStyle(root);
  return root;
}

function parseEnvelopeXml(bytes: Buffer | string, limits: Partial<XmlLimits>): XmlDocument {
  try {
    return parseXml(bytes, limits);
  } catch (e) {
    if (e instanceof XmlError) {
      if (e.code === 'too-large') throw SoapFault.sender(`message too large: ${e.message}`);
      throw SoapFault.sender(`XML not accepted: ${e.message}`);
    }
    throw e;
  }
}

/**
 * Processes the header blocks targeted at us: the WS-Addressing properties and the wsse:Security
 * block are read first, so that a fault raised afterwards (mustUnderstand, body) can name the
 * request's MessageID in its RelatesTo; then every targeted block flagged mustUnderstand must be
 * one we understand (MustUnderstand fault listing the others, §5.4.8).
 */
function processHeaders(header: XmlElement | undefined, wsa: Addressing): { security?: XmlElement } {
  let security: XmlElement | undefined;
  if (!header) return {};
  noEncodingStyle(header);
  const mustUnderstand: XmlElement[] = [];
  for (const h of header.children) {
    const mu = h.attr('mustUnderstand', NS.soap);
    const required = mu !== undefined && xsBoolean(mu, `soap:mustUnderstand on {${h.ns}}${h.local}`);
    if (!targetedAtUs(h)) continue;
    if (required) mustUnderstand.push(h);
    // A mustUnderstand attribute in the wsa namespace (seen from some peers) is schema-invalid; we ignore it.
    if (h.ns === NS.wsa) readAddressing(h, wsa);
    else if (h.is(NS.wsse, 'Security')) {
      if (security) throw SoapFault.sender('more than one wsse:Security header');
      security = h;
    }
  }
  const notUnderstood = mustUnderstand.filter((h) => !UNDERSTOOD.has(h.ns));
  if (notUnderstood.length > 0) {
    const names = notUnderstood.map((h) => `{${h.ns}}${h.local}`).join(', ');
    throw new SoapFault('MustUnderstand', `header ${names} is not understood`, undefined, undefined, {
      notUnderstood: notUnderstood.map((h) => ({ ns: h.ns, local: h.local })),
    });
  }
  return { security };
}

/**
 * Decodes a SOAP 1.2 envelope. Problems become SoapFaults with a clear reason; a fault raised
 * after the WS-Addressing headers were read carries the request's MessageID (`relatesTo`).
 * `requireAddressing` makes wsa:Action and wsa:MessageID mandatory (requests, per IHE).
 */
export function decodeEnvelope(
  bytes: Buffer | string,
  limits: Partial<XmlLimits> = {},
  requireAddressing = true,
): SoapEnvelope {
  const doc = parseEnvelopeXml(bytes, limits);
  const root = envelopeRoot(doc);
  let header: XmlElement | undefined;
  let body: XmlElement | undefined;
  for (const c of root.children) {
    if (c.is(NS.soap, 'Header') && !header && !body) header = c;
    else if (c.is(NS.soap, 'Body') && !body) body = c;
    else throw SoapFault.sender(`unexpected element {${c.ns}}${c.local} in soap:Envelope`);
  }
  const wsa: Addressing = {};
  try {
    const { security } = processHeaders(header, wsa);
    if (!body) throw SoapFault.sender('soap:Body missing');
    noEncodingStyle(body);
    if (body.children.length !== 1) {
      throw SoapFault.sender(`soap:Body must hold exactly one element (found ${body.children.length})`);
    }
    if (requireAddressing) {
      if (!wsa.action)
        throw SoapFault.sender('WS-Addressing header Action is required', 'MessageAddressingHeaderRequired');
      if (!wsa.messageId) {
        throw SoapFault.sender(
          'WS-Addressing header MessageID is required',
          'MessageAddressingHeaderRequired',
        );
      }
    }
    return { doc, header, payload: body.children[0], wsa, security };
  } catch (e) {
    if (e instanceof SoapFault && wsa.messageId) e.relatesTo ??= wsa.messageId;
    throw e;
  }
}

/**
 * Decodes the head of an envelope — everything before the soap:Body start tag (see
 * envelope-head.ts) — and returns its WS-Addressing properties, with the same header processing
 * as `decodeEnvelope`. Used to authenticate an answer before its body is read.
 */
export function decodeEnvelopeHead(
  head: Buffer,
  rootQname: string,
  limits: Partial<XmlLimits> = {},
): Addressing {
  const doc = parseEnvelopeXml(Buffer.concat([head, Buffer.from(`</${rootQname}>`, 'latin1')]), limits);
  const root = envelopeRoot(doc);
  let header: XmlElement | undefined;
  for (const c of root.children) {
    if (c.is(NS.soap, 'Header') && !header) header = c;
    else throw SoapFault.sender(`unexpected element {${c.ns}}${c.local} in soap:Envelope`);
  }
  const wsa: Addressing = {};
  processHeaders(header, wsa);
  return wsa;
}

function readAddressing(h: XmlElement, wsa: Addressing): void {
  const once = (key: keyof Addressing, value: string) => {
    if (wsa[key] !== undefined)
      throw SoapFault.sender(`duplicate WS-Addressing header ${h.local}`, 'InvalidAddressingHeader');
    if (value.length > 2048)
      throw SoapFault.sender(`WS-Addressing ${h.local} too long`, 'InvalidAddressingHeader');
    // A copy, not a slice of the message: the addressing outlives the message's text.
    wsa[key] = flatCopy(value);
  };
  switch (h.local) {
    case 'Action':
      return once('action', h.trimmedText());
    case 'MessageID':
      return once('messageId', h.trimmedText());
    case 'To':
      return once('to', h.trimmedText());
    case 'RelatesTo': {
      const type = h.attr('RelationshipType');
      if (type === undefined || type === 'http://www.w3.org/2005/08/addressing/reply')
        once('relatesTo', h.trimmedText());
      return;
    }
    case 'ReplyTo':
    case 'FaultTo': {
      const addr = h.child(NS.wsa, 'Address');
      if (!addr) throw SoapFault.sender(`wsa:${h.local} without wsa:Address`, 'InvalidAddressingHeader');
      return once(h.local === 'ReplyTo' ? 'replyTo' : 'faultTo', addr.trimmedText());
    }
    default:
      return;
  }
}

export interface OutboundEnvelope {
  action: string;
  /** Defaults to a new urn:uuid. */
  messageId?: string;
  to?: string;
  /** Requests: where the response goes (anonymous for synchronous). */
  replyTo?: string;
  faultTo?: string;
  /** Responses: the request's MessageID. */
  relatesTo?: string;
  /** Extra header blocks, already serialised (e.g. a relayed wsse:Security). */
  extraHeaders?: string;
  /** The body payload, already serialised. */
  body: string;
  /** Requests carry mustUnderstand on wsa:Action; responses do not. */
  request: boolean;
}

export function encodeEnvelope(e: OutboundEnvelope): string {
  const mu = e.request ? ' soap:mustUnderstand="true"' : '';
  let h = `<wsa:Action${mu}>${escapeText(e.action)}</wsa:Action><wsa:MessageID>${escapeText(e.messageId ?? newMessageId())}</wsa:MessageID>`;
  if (e.request) {
    h += `<wsa:ReplyTo><wsa:Address>${escapeText(e.replyTo ?? WSA_ANONYMOUS)}</wsa:Address></wsa:ReplyTo>`;
    if (e.faultTo) h += `<wsa:FaultTo><wsa:Address>${escapeText(e.faultTo)}</wsa:Address></wsa:FaultTo>`;
  }
  if (e.relatesTo) h += `<wsa:RelatesTo>${escapeText(e.relatesTo)}</wsa:RelatesTo>`;
  if (e.to && e.to !== WSA_ANONYMOUS) h += `<wsa:To>${escapeText(e.to)}</wsa:To>`;
  if (e.extraHeaders) h += e.extraHeaders;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soap:Envelope xmlns:soap="${NS.soap}" xmlns:wsa="${NS.wsa}"><soap:Header>${h}</soap:Header>` +
    `<soap:Body>${e.body}</soap:Body></soap:Envelope>`
  );
}

/** The payload element as self-contained XML (for relaying a request body unchanged). */
export function payloadXml(env: SoapEnvelope): string {
  return relayElement(env.doc, env.payload);
}

/** A wsse:Security header carrying the given assertions unchanged (XUA forwarding). */
export function securityHeaderWithAssertions(env: SoapEnvelope): string | undefined {
  const assertions = env.security?.childrenNamed(NS.saml2, 'Assertion') ?? [];
  if (assertions.length === 0) return undefined;
  return `<wsse:Security xmlns:wsse="${NS.wsse}">${assertions.map((a) => relayElement(env.doc, a)).join('')}</wsse:Security>`;
}
