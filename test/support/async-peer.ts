/**
 * A scripted Responding Gateway for async exchange tests: answers ITI-38 synchronously when the
 * ReplyTo is anonymous, else 202 and then delivers (or not) the response to ReplyTo as told.
 * Also a ReplyTo receiver that collects what gateways deliver.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { Readable } from 'node:stream';
import {
  Action,
  contentIdKey,
  readSoapMessage,
  decodeEnvelope,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  isAnonymous,
  newMessageId,
  type SoapEnvelope,
} from '@xcai/shared';

/** wrong-action-first: delivers a response with the request's action first, then the right one. */
export type PeerMode = 'deliver' | 'hold' | 'duplicate' | 'silent' | 'wrong-action-first';

export interface HeldRequest {
  messageId: string;
  replyTo: string;
  /** POSTs the response to ReplyTo; resolves with the receiver's HTTP status. */
  deliver(): Promise<number>;
}

export interface AsyncPeer {
  url: string;
  mode: PeerMode;
  held: HeldRequest[];
  /** Statuses the ReplyTo receiver answered to our deliveries, in order. */
  deliveries: number[];
  received: string[];
  /** Resolves when `n` requests were held. */
  waitHeld(n: number): Promise<void>;
  close(): Promise<void>;
}

/** One ExtrinsicObject of `home` (enough for the merge to count). */
export function peerObject(home: string, id = `urn:uuid:${crypto.randomUUID()}`): string {
  return (
    `<rim:ExtrinsicObject xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="${id}" home="${home}" ` +
    `objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1" mimeType="application/dicom" status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"/>`
  );
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startAsyncPeer(home: string, mode: PeerMode, objects = 1): Promise<AsyncPeer> {
  const held: HeldRequest[] = [];
  const deliveries: number[] = [];
  const received: string[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  const answer = (relatesTo: string, to?: string, action: string = Action.ITI38Response) =>
    encodeEnvelope({
      action,
      messageId: newMessageId(),
      relatesTo,
      to,
      body: encodeAdhocQueryResponse(
        'Success',
        [],
        Array.from({ length: objects }, () => peerObject(home)),
      ),
      request: false,
    });
  const post = async (url: string, xml: string) => {
    const r = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
      body: xml,
    });
    await r.body.dump();
    deliveries.push(r.statusCode);
    return r.statusCode;
  };
  const server: Server = createServer((req, res) => {
    void readAll(req).then(async (xml) => {
      received.push(xml);
      const env: SoapEnvelope = decodeEnvelope(xml);
      const id = env.wsa.messageId as string;
      if (isAnonymous(env.wsa.replyTo)) {
        res.writeHead(200, { 'content-type': 'application/soap+xml; charset=UTF-8' }).end(answer(id));
        return;
      }
      const replyTo = env.wsa.replyTo as string;
      res.writeHead(202).end();
      const h: HeldRequest = { messageId: id, replyTo, deliver: () => post(replyTo, answer(id, replyTo)) };
      if (peer.mode === 'deliver') await h.deliver();
      else if (peer.mode === 'wrong-action-first') {
        await post(replyTo, answer(id, replyTo, Action.ITI38));
        await h.deliver();
      } else if (peer.mode === 'duplicate') {
        const xml2 = answer(id, replyTo);
        await post(replyTo, xml2);
        await post(replyTo, xml2);
      } else if (peer.mode === 'hold') {
        held.push(h);
        waiters = waiters.filter((w) => (held.length >= w.n ? (w.resolve(), false) : true));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/iti38`;
  const peer: AsyncPeer = {
    url,
    mode,
    held,
    deliveries,
    received,
    waitHeld: (n) =>
      held.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  return peer;
}

export interface ReceivedMessage {
  /** The SOAP envelope (the root part for MTOM). */
  xml: string;
  envelope: SoapEnvelope;
  contentType: string;
  path: string;
  /** MTOM attachments by Content-ID key. */
  parts: Map<string, Buffer>;
}

export interface ReplyReceiver {
  url: string;
  /** The next message POSTed with this RelatesTo. */
  next(relatesTo: string): Promise<ReceivedMessage>;
  count(): number;
  close(): Promise<void>;
}

/** Reads a plain or MTOM SOAP message into memory (tests only). */
export async function readMessage(
  body: Readable,
  contentType: string,
): Promise<Omit<ReceivedMessage, 'path'>> {
  const msg = await readSoapMessage(body, contentType, {
    maxRootBytes: 1 << 26,
    maxPartHeaderBytes: 1 << 14,
    maxParts: 100_000,
    maxTotalBytes: 2 ** 34,
  });
  const parts = new Map<string, Buffer>();
  for (let p = await msg.attachments.next(); p; p = await msg.attachments.next()) {
    const bufs: Buffer[] = [];
    for await (const c of p.body) bufs.push(c as Buffer);
    parts.set(contentIdKey(p.headers.contentId ?? ''), Buffer.concat(bufs));
  }
  const xml = msg.envelope.toString('utf8');
  const limits = { maxBytes: 1 << 26, maxTextLength: 1 << 26, maxElements: 5_000_000 };
  return { xml, envelope: decodeEnvelope(xml, limits, false), contentType, parts };
}

/** Collects async responses POSTed to it (answers `status` once the body was read), keyed by RelatesTo. */
export async function startReplyReceiver(status = 202): Promise<ReplyReceiver> {
  const got = new Map<string, ReceivedMessage>();
  const waiting = new Map<string, (m: ReceivedMessage) => void>();
  let n = 0;
  const server = createServer((req, res) => {
    void readMessage(req, String(req.headers['content-type'])).then(
      (r) => {
        n++;
        res.writeHead(status).end();
        const m: ReceivedMessage = { ...r, path: req.url ?? '' };
        const rel = m.envelope.wsa.relatesTo ?? '';
        const w = waiting.get(rel);
        if (w) {
          waiting.delete(rel);
          w(m);
        } else got.set(rel, m);
      },
      () => res.writeHead(400).end(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    next: (rel) => {
      const m = got.get(rel);
      if (m) {
        got.delete(rel);
        return Promise.resolve(m);
      }
      return new Promise((resolve) => waiting.set(rel, resolve));
    },
    count: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
