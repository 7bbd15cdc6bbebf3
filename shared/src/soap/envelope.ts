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
const UNDERSTOOD = new Set([NS.wsa, NS.wsse, NS.wsu]);

/**
 * Decodes a SOAP 1.2 envelope. Problems become SoapFaults with a clear reason.
 * `requireAddressing` makes wsa:Action and wsa:MessageID mandatory (requests, per IHE).
 */
export function decodeEnvelope(
  bytes: Buffer | string,
  limits: Partial<XmlLimits> = {},
  requireAddressing = true,
): SoapEnvelope {
  let doc: XmlDocument;
  try {
    doc = parseXml(bytes, limits);
  } catch (e) {
    if (e instanceof XmlError) {
      if (e.code === 'too-large') throw SoapFault.sender(`message too large: ${e.message}`);
      throw SoapFault.sender(`XML not accepted: ${e.message}`);
    }
    throw e;
  }
  const root = doc.root;
  if (root.local === 'Envelope' && root.ns === NS.soap11) {
    throw new SoapFault('VersionMismatch', 'SOAP 1.1 is not supported; IHE web services use SOAP 1.2');
  }
  if (!root.is(NS.soap, 'Envelope')) {
    throw new SoapFault('VersionMismatch', `not a SOAP 1.2 envelope (root is {${root.ns}}${root.local})`);
  }
  let header: XmlElement | undefined;
  let body: XmlElement | undefined;
  for (const c of root.children) {
    if (c.is(NS.soap, 'Header') && !header && !body) header = c;
    else if (c.is(NS.soap, 'Body') && !body) body = c;
    else throw SoapFault.sender(`unexpected element {${c.ns}}${c.local} in soap:Envelope`);
  }
  if (!body) throw SoapFault.sender('soap:Body missing');
  if (body.children.length !== 1) {
    throw SoapFault.sender(`soap:Body must hold exactly one element (found ${body.children.length})`);
  }
  const wsa: Addressing = {};
  let security: XmlElement | undefined;
  if (header) {
    for (const h of header.children) {
      const mu = h.attr('mustUnderstand', NS.soap);
      if ((mu === 'true' || mu === '1') && !UNDERSTOOD.has(h.ns as never)) {
        throw new SoapFault('MustUnderstand', `header {${h.ns}}${h.local} is not understood`);
      }
      // A mustUnderstand attribute in the wsa namespace (seen from some peers) is schema-invalid; we ignore it.
      if (h.ns === NS.wsa) readAddressing(h, wsa);
      else if (h.is(NS.wsse, 'Security')) {
        if (security) throw SoapFault.sender('more than one wsse:Security header');
        security = h;
      }
    }
  }
  if (requireAddressing) {
    if (!wsa.action)
      throw SoapFault.sender('WS-Addressing header Action is required', 'MessageAddressingHeaderRequired');
    if (!wsa.messageId) {
      throw SoapFault.sender('WS-Addressing header MessageID is required', 'MessageAddressingHeaderRequired');
    }
  }
  return { doc, header, payload: body.children[0], wsa, security };
}

function readAddressing(h: XmlElement, wsa: Addressing): void {
  const once = (key: keyof Addressing, value: string) => {
    if (wsa[key] !== undefined)
      throw SoapFault.sender(`duplicate WS-Addressing header ${h.local}`, 'InvalidAddressingHeader');
    if (value.length > 2048)
      throw SoapFault.sender(`WS-Addressing ${h.local} too long`, 'InvalidAddressingHeader');
    wsa[key] = value;
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
