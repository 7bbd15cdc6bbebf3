import { request } from 'undici';
import { decodeEnvelope, encodeEnvelope, newMessageId, type SoapEnvelope } from '@xcai/shared';

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
  o: { replyTo?: string; extraHeaders?: string; messageId?: string; raw?: string; contentType?: string } = {},
): Promise<SoapAnswer> {
  const messageId = o.messageId ?? newMessageId();
  const xml = o.raw ?? encodeEnvelope({ action, messageId, to: url, body, replyTo: o.replyTo, extraHeaders: o.extraHeaders, request: true });
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': o.contentType ?? 'application/soap+xml; charset=UTF-8' },
    body: xml,
  });
  const text = await res.body.text();
  const ct = String(res.headers['content-type'] ?? '');
  return {
    status: res.statusCode,
    contentType: ct,
    xml: text,
    envelope: text ? decodeEnvelope(text, { maxBytes: 1 << 28, maxTextLength: 1 << 28, maxElements: 5_000_000 }, false) : (undefined as never),
    messageId,
  };
}
