import { Writable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import {
  cidFromHref,
  contentIdKey,
  decodeEnvelope,
  decodeRetrieveDocumentSetResponse,
  encodeEnvelope,
  MtomWriter,
  newMessageId,
  readSoapMessage,
  type SoapEnvelope,
} from '@xcai/shared';

export interface SoapAnswer {
  status: number;
  contentType: string;
  xml: string;
  envelope: SoapEnvelope;
  messageId: string;
}

/** Sends a plain SOAP 1.2 request the way a PACS / consumer would. */
export async function soapCall(
  url: string,
  action: string,
  body: string,
  o: {
    replyTo?: string;
    extraHeaders?: string;
    messageId?: string;
    raw?: string;
    contentType?: string;
    signal?: AbortSignal;
    /** e.g. a client presenting a certificate (test/support/certs.ts). */
    dispatcher?: Dispatcher;
  } = {},
): Promise<SoapAnswer> {
  const messageId = o.messageId ?? newMessageId();
  const xml = o.raw ?? requestEnvelope(url, action, body, messageId, o);
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': o.contentType ?? 'application/soap+xml; charset=UTF-8' },
    body: xml,
    signal: o.signal,
    dispatcher: o.dispatcher,
  });
  const text = await res.body.text();
  const ct = String(res.headers['content-type'] ?? '');
  return {
    status: res.statusCode,
    contentType: ct,
    xml: text,
    envelope: text
      ? decodeEnvelope(text, { maxBytes: 1 << 28, maxTextLength: 1 << 28, maxElements: 5_000_000 }, false)
      : (undefined as never),
    messageId,
  };
}

export interface RetrievedDocument {
  homeCommunityId?: string;
  repositoryUniqueId: string;
  documentUniqueId: string;
  mimeType: string;
  bytes: Buffer;
}

export interface RetrieveAnswerForTest extends SoapAnswer {
  status: number;
  rootXml: string;
  registryStatus: string;
  errors: { errorCode: string; codeContext: string; location?: string; severity?: 'Error' | 'Warning' }[];
  documents: RetrievedDocument[];
  /** Set when the MTOM package was cut short (the gateway aborted the response). */
  truncated?: string;
}

/** Sends a retrieve (as MTOM, as IHE asks) and reads the MTOM answer into memory (tests only). */
export async function retrieveCall(
  url: string,
  action: string,
  body: string,
  o: RetrieveOptions = {},
): Promise<RetrieveAnswerForTest> {
  const messageId = newMessageId();
  const res = await postRetrieve(url, action, body, messageId, o);
  const ct = String(res.headers['content-type'] ?? '');
  const msg = await readSoapMessage(res.body, ct, {
    maxRootBytes: 1 << 26,
    maxPartHeaderBytes: 1 << 14,
    maxParts: 100_000,
    maxTotalBytes: 2 ** 34,
  });
  const parts = new Map<string, Buffer>();
  let truncated: string | undefined;
  try {
    for (let p = await msg.attachments.next(); p; p = await msg.attachments.next()) {
      const bufs: Buffer[] = [];
      for await (const c of p.body) bufs.push(c as Buffer);
      parts.set(contentIdKey(p.headers.contentId ?? ''), Buffer.concat(bufs));
    }
  } catch (e) {
    truncated = (e as Error).message;
  }
  return retrieveAnswer(msg.envelope.toString('utf8'), parts, {
    status: res.statusCode,
    contentType: ct,
    messageId,
    truncated,
  });
}

/**
 * Sends a retrieve asynchronously (a non-anonymous ReplyTo): the responder answers 202 and POSTs the
 * response to `replyTo` (read it there with retrieveAnswer).
 */
export async function asyncRetrieveCall(
  url: string,
  action: string,
  body: string,
  replyTo: string,
  o: RetrieveOptions = {},
): Promise<{ status: number; messageId: string }> {
  const messageId = newMessageId();
  const res = await postRetrieve(url, action, body, messageId, { ...o, replyTo });
  await res.body.dump();
  return { status: res.statusCode, messageId };
}

/** The SOAP 1.2 request envelope (WS-Addressing headers, and any further headers) of a test client. */
function requestEnvelope(
  url: string,
  action: string,
  body: string,
  messageId: string,
  o: { replyTo?: string; extraHeaders?: string },
): string {
  return encodeEnvelope({
    action,
    messageId,
    to: url,
    body,
    replyTo: o.replyTo,
    extraHeaders: o.extraHeaders,
    request: true,
  });
}

export interface RetrieveOptions {
  /** Send a plain SOAP 1.2 message instead of MTOM (what some peers do). */
  plain?: boolean;
  /** e.g. a client presenting a certificate (test/support/certs.ts). */
  dispatcher?: Dispatcher;
  /** More SOAP headers, e.g. a wsse:Security with an XUA assertion. */
  extraHeaders?: string;
  /** Aborts the exchange (e.g. AbortSignal.timeout as a hang detector). */
  signal?: AbortSignal;
}

async function postRetrieve(
  url: string,
  action: string,
  body: string,
  messageId: string,
  o: RetrieveOptions & { replyTo?: string },
) {
  const envelope = requestEnvelope(url, action, body, messageId, o);
  if (o.plain) {
    return request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
      body: envelope,
      dispatcher: o.dispatcher,
      signal: o.signal,
    });
  }
  const chunks: Buffer[] = [];
  const w = new MtomWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), {
    action,
  });
  await w.writeRoot(envelope);
  await w.end();
  return request(url, {
    method: 'POST',
    headers: { 'content-type': w.contentType },
    body: Buffer.concat(chunks),
    dispatcher: o.dispatcher,
    signal: o.signal,
  });
}

/** A retrieve response (its root part and attachments by Content-ID key) as the tests read it. */
export function retrieveAnswer(
  rootXml: string,
  parts: Map<string, Buffer>,
  o: { status: number; contentType: string; messageId: string; truncated?: string },
): RetrieveAnswerForTest {
  const envelope = decodeEnvelope(
    rootXml,
    { maxBytes: 1 << 26, maxTextLength: 1 << 26, maxElements: 5_000_000 },
    false,
  );
  const answer: RetrieveAnswerForTest = {
    ...o,
    xml: rootXml,
    envelope,
    rootXml,
    registryStatus: '',
    errors: [],
    documents: [],
  };
  if (envelope.payload.local !== 'RetrieveDocumentSetResponse') return answer;
  const root = decodeRetrieveDocumentSetResponse(envelope.payload);
  answer.registryStatus = root.status;
  answer.errors = root.errors;
  answer.documents = root.documents.map((d) => ({
    homeCommunityId: d.homeCommunityId,
    repositoryUniqueId: d.repositoryUniqueId,
    documentUniqueId: d.documentUniqueId,
    mimeType: d.mimeType,
    bytes:
      d.content.kind === 'inline'
        ? Buffer.from(d.content.base64, 'base64')
        : (parts.get(contentIdKey(cidFromHref(d.content.href))) ?? Buffer.alloc(0)),
  }));
  return answer;
}
