import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Express } from 'express';
import { auditRejectedAsyncResponse } from '../audit/gateway';
import type { RemoteCommunity } from '../directory/types';
import { ByteLimit } from '../outbound/client';
import { callerOf } from '../inbound/server';
import { MtomError } from '../mtom/errors';
import { readSoapMessage } from '../mtom/read';
import type { AttachmentStream, IncomingSoapMessage } from '../mtom/types';
import { MtomWriter } from '../mtom/writer';
import { responseXmlLimits } from '../pipeline/dispatch';
import type { Caller, Gateway } from '../pipeline/transaction';
import { decodeEnvelope, type SoapEnvelope } from '../soap/envelope';
import { encodeFault, SoapFault } from '../soap/fault';
import type { Logger } from '../util/log';
import { checkHandover, HANDOVER_HEADER, HANDOVER_RELATES_TO, signHandover } from './handover';
import { identityFits } from './reply-to';
import type { ClaimState, CorrelationStore, PendingRecord } from './store';
import { messageKey, type AsyncCalls, type Waiter } from './used';

export const ASYNC_RESPONSE_PATH = '/async-response';
export const HANDOVER_PATH = '/async-response/handover';

export interface ReceiverDeps {
  gateway: Gateway;
  store: CorrelationStore;
  calls: AsyncCalls;
  replica: string;
  /** Hand-over key (undefined: hand-overs refused both ways). */
  key?: Buffer;
  graceMs: number;
  log: Logger;
}

/**
 * The Initiating Gateway's async response receiver (one-way, answers 202 — the `*-asyncresponse`
 * WSDLs): a response for a request this replica waits for is given to it, and the HTTP request is
 * held open until the transaction consumed (or dropped) its attachments; a response for a request
 * another replica waits for is streamed on to that replica (hand-over, HMAC-authenticated).
 */
export function mountReceiver(app: Express, d: ReceiverDeps): void {
  app.post(HANDOVER_PATH, (req, res) => void receive(d, req, res, true));
  app.post(ASYNC_RESPONSE_PATH, (req, res) => void receive(d, req, res, false));
}

const SOAP_XML = 'application/soap+xml; charset=UTF-8';

async function receive(
  d: ReceiverDeps,
  req: IncomingMessage,
  res: ServerResponse,
  handover: boolean,
): Promise<void> {
  const caller = callerOf(req);
  const log = d.log.child({ component: 'async-receiver', from: caller.remoteAddress, handover });
  if (handover) {
    const why = checkHandover(
      d.key,
      req.headers[HANDOVER_HEADER],
      req.headers[HANDOVER_RELATES_TO],
      d.replica,
    );
    if (why) {
      log.warn('hand-over refused', { reason: why });
      rejected(d, caller, `hand-over refused: ${why}`, firstHeader(req.headers[HANDOVER_RELATES_TO]), 8);
      return answer(res, 403, SoapFault.sender(why));
    }
  }
  const limit = new ByteLimit(maxResponseBytes(d.gateway));
  req.on('error', (e) => limit.destroy(e));
  req.on('close', () => {
    if (!req.complete) limit.destroy(new MtomError('truncated', 'the sender went away'));
  });
  const source = req.pipe(limit);
  const rootMax = Math.max(d.gateway.limits.maxRetrieveRootBytes, 1);
  let msg: IncomingSoapMessage;
  let env: SoapEnvelope;
  try {
    msg = await readSoapMessage(source, req.headers['content-type'], {
      maxRootBytes: rootMax,
      maxPartHeaderBytes: 16 * 1024,
      maxParts: 100_000,
      maxTotalBytes: limit.limit,
      // A sender that stops sending (our own backpressure does not count) is bounded like a
      // synchronous answer's body; the whole answer is not, so a large study can stream in.
      idleTimeoutMs: d.gateway.directory.deadlineMs,
    });
  } catch (e) {
    log.info('async response not readable', { reason: (e as Error).message });
    return answer(res, 400, SoapFault.sender(`message not readable: ${(e as Error).message}`));
  }
  try {
    env = decodeEnvelope(
      msg.envelope,
      { ...d.gateway.limits.xml, maxBytes: rootMax, maxTextLength: rootMax, maxElements: 2_000_000 },
      false,
    );
  } catch (e) {
    void msg.attachments.discard();
    const f = e instanceof SoapFault ? e : SoapFault.sender((e as Error).message);
    log.info('async response not a SOAP 1.2 envelope', { reason: f.reason });
    return answer(res, 400, f);
  }
  const relatesTo = env.wsa.relatesTo;
  const key = messageKey(relatesTo);
  const drop = () => void msg.attachments.discard();
  if (!key) {
    drop();
    log.warn('async response rejected: no RelatesTo naming one of our requests', {
      relatesTo: relatesTo?.slice(0, 100),
    });
    rejected(d, caller, 'wsa:RelatesTo does not name a request of this gateway', relatesTo);
    return answer(
      res,
      400,
      SoapFault.sender('wsa:RelatesTo does not name a request of this gateway', 'InvalidAddressingHeader'),
    );
  }
  if (handover && relatesTo !== req.headers[HANDOVER_RELATES_TO]) {
    drop();
    rejected(d, caller, 'hand-over RelatesTo does not match the message', relatesTo, 8);
    return answer(res, 403, SoapFault.sender('hand-over RelatesTo does not match the message'));
  }
  const ttl = (deadline: number) => deadline - Date.now() + d.graceMs;
  const waiter = d.calls.waiters.get(key);
  if (waiter) return landHere(d, waiter, { msg, env, source, limit, caller, handover, log, res, ttl });
  if (handover) {
    drop();
    log.info('hand-over for a request no longer waiting here', { relatesTo });
    return answer(res, 410, SoapFault.sender('the request is no longer waiting for a response'));
  }

  let rec: PendingRecord | undefined;
  try {
    rec = await d.store.getPending(key);
  } catch (e) {
    drop();
    log.warn('async response refused: correlation store unavailable', { reason: (e as Error).message });
    return answer(res, 503, SoapFault.receiver('correlation store unavailable; retry later'));
  }
  if (!rec) {
    const state = await d.store.claimState(key).catch(() => undefined);
    drop();
    if (state) {
      log.info(
        state === 'answered'
          ? 'duplicate async response ignored'
          : `async response after the request was ${state}: ignored`,
        { relatesTo },
      );
      return answer(res, 202);
    }
    log.warn('async response rejected: RelatesTo matches no pending request', { relatesTo });
    rejected(d, caller, 'wsa:RelatesTo matches no pending request', relatesTo);
    return answer(
      res,
      400,
      SoapFault.sender('wsa:RelatesTo matches no pending request', 'InvalidAddressingHeader'),
    );
  }
  const community = d.gateway.directory.communities.find((c) => c.homeCommunityId === rec.community);
  const mismatch = senderMismatch(caller, community, rec.community);
  if (mismatch) {
    drop();
    log.warn('async response rejected: not from the community asked', {
      relatesTo,
      community: rec.community,
      reason: mismatch,
    });
    rejected(d, caller, `response refused: ${mismatch}`, relatesTo, 8);
    return answer(res, 403, SoapFault.sender(`response refused: ${mismatch}`));
  }
  let claim: 'first' | ClaimState;
  try {
    claim = await d.store.claim(key, 'answered', ttl(rec.deadline));
  } catch (e) {
    drop();
    return answer(
      res,
      503,
      SoapFault.receiver(`correlation store unavailable (${(e as Error).message}); retry later`),
    );
  }
  if (claim !== 'first') {
    drop();
    log.info('duplicate async response ignored', { relatesTo, state: claim });
    return answer(res, 202);
  }
  const url =
    rec.owner === d.replica ? undefined : await d.store.replicaUrl(rec.owner).catch(() => undefined);
  if (!url || !d.key) {
    drop();
    log.warn('async response cannot be handed over: its request is lost', {
      relatesTo,
      owner: rec.owner,
      reason: !d.key ? 'hand-over not configured' : 'owner replica unknown',
    });
    return answer(res, 202);
  }
  try {
    const status = await handOver(
      d,
      `${url}${HANDOVER_PATH}`,
      relatesTo as string,
      rec.owner,
      msg,
      rec.deadline,
    );
    if (status >= 200 && status < 300) {
      log.info('async response handed over to the waiting replica', { relatesTo, owner: rec.owner });
      return answer(res, 202);
    }
    log.warn('hand-over refused by the owner replica', { relatesTo, status });
    // 410: the owner stopped waiting (deadline) — a late answer, not the sender's fault.
    return status === 410
      ? answer(res, 202)
      : answer(res, 502, SoapFault.receiver('hand-over to the waiting replica failed'));
  } catch (e) {
    drop();
    log.warn('hand-over failed', { relatesTo, reason: (e as Error).message });
    return answer(res, 502, SoapFault.receiver('hand-over to the waiting replica failed'));
  }
}

interface Arrival {
  msg: IncomingSoapMessage;
  env: SoapEnvelope;
  source: Readable;
  limit: ByteLimit;
  caller: Caller;
  handover: boolean;
  log: Logger;
  res: ServerResponse;
  ttl: (deadline: number) => number;
}

async function landHere(d: ReceiverDeps, w: Waiter, a: Arrival): Promise<void> {
  const { msg, res, log } = a;
  const drop = () => void msg.attachments.discard();
  const relatesTo = a.env.wsa.relatesTo;
  const mismatch = a.handover ? undefined : senderMismatch(a.caller, w.community, w.record.community);
  if (mismatch) {
    drop();
    log.warn('async response rejected: not from the community asked', {
      relatesTo,
      community: w.record.community,
      reason: mismatch,
    });
    rejected(d, a.caller, `response refused: ${mismatch}`, relatesTo, 8);
    return answer(res, 403, SoapFault.sender(`response refused: ${mismatch}`));
  }
  a.limit.limit = Math.min(a.limit.limit, w.call.target.endpoint.maxResponseBytes);
  const rootMax = responseXmlLimits(w.ctx, w.call).maxBytes ?? Infinity;
  if (msg.envelope.length > rootMax) {
    drop();
    return answer(res, 400, SoapFault.sender(`response envelope larger than ${rootMax} bytes`));
  }
  if (!a.handover) {
    const claim = await d.store
      .claim(w.key, 'answered', a.ttl(w.record.deadline))
      .catch(() => 'first' as const);
    if (claim !== 'first') {
      drop();
      log.info('duplicate async response ignored', { relatesTo, state: claim });
      return answer(res, 202);
    }
  }
  if (d.calls.waiters.get(w.key) !== w) {
    drop();
    log.info('async response arrived after its request stopped waiting: ignored', { relatesTo });
    return answer(res, 202);
  }
  d.calls.waiters.delete(w.key);
  const t = trackConsumption(msg, a.source);
  w.land({ envelope: a.env, attachments: t.attachments });
  const bound = Math.max(1, a.ttl(w.record.deadline));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([t.done, new Promise<void>((r) => (timer = setTimeout(r, bound)))]);
  clearTimeout(timer);
  await msg.attachments.discard().catch(() => undefined);
  if (a.source.errored)
    return answer(res, 400, SoapFault.sender(`message not readable: ${a.source.errored.message}`));
  answer(res, 202);
}

/** Audit record of a refused async response (Security Alert, Use of Restricted Function). */
function rejected(
  d: ReceiverDeps,
  caller: Caller,
  reason: string,
  relatesTo?: string,
  outcome: 4 | 8 = 4,
): void {
  auditRejectedAsyncResponse(d.gateway.audit, {
    remoteAddress: caller.remoteAddress,
    certificateSubject: caller.certificate?.subject,
    reason,
    relatesTo,
    outcome,
  });
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Why this caller may not answer for `home`, or undefined when it may (R30). */
export function senderMismatch(
  caller: Caller,
  community: RemoteCommunity | undefined,
  home: string,
): string | undefined {
  if (!community) return `community ${home} is not in the directory any more`;
  if (caller.community) {
    return caller.community.homeCommunityId === home
      ? undefined
      : `sent by community ${caller.community.homeCommunityId}, not ${home}`;
  }
  if (!community.identity) return undefined;
  if (!caller.certificate) return `community ${home} must present its certificate`;
  return identityFits(community.identity, caller)
    ? undefined
    : `the certificate presented does not belong to community ${home}`;
}

/** Attachments whose end (last part read, or discarded) resolves `done`. */
function trackConsumption(
  msg: IncomingSoapMessage,
  source: Readable,
): { attachments: AttachmentStream; done: Promise<void> } {
  if (!msg.isMtom) return { attachments: msg.attachments, done: Promise.resolve() };
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  source.once('end', () => finish());
  source.once('close', () => finish());
  return {
    done,
    attachments: {
      next: async () => {
        try {
          const p = await msg.attachments.next();
          if (p === null) finish();
          return p;
        } catch (e) {
          finish();
          throw e;
        }
      },
      discard: () => msg.attachments.discard().finally(finish),
    },
  };
}

/** Streams the message on to the owner replica; resolves with the owner's HTTP status. */
async function handOver(
  d: ReceiverDeps,
  url: string,
  relatesTo: string,
  owner: string,
  msg: IncomingSoapMessage,
  deadline: number,
): Promise<number> {
  const wait = Math.max(1_000, deadline - Date.now() + d.graceMs);
  let contentType = SOAP_XML;
  let body: Buffer | PassThrough = msg.envelope;
  if (msg.isMtom) {
    const pt = new PassThrough();
    const w = new MtomWriter(pt);
    contentType = w.contentType;
    body = pt;
    void (async () => {
      await w.writeRoot(msg.envelope);
      for (let p = await msg.attachments.next(); p; p = await msg.attachments.next()) {
        await w.writePart(
          p.headers.contentId ?? w.newContentId(),
          p.headers.contentType ?? 'application/octet-stream',
          p.body,
        );
      }
      await w.end();
      pt.end();
    })().catch((e: Error) => {
      pt.destroy(e);
      void msg.attachments.discard();
    });
  }
  const res = await d.gateway.outbound.post({
    endpoint: { url, timeoutMs: wait, maxConcurrent: 256, maxResponseBytes: 1024 * 1024 },
    contentType,
    body,
    headers: {
      [HANDOVER_HEADER]: signHandover(d.key as Buffer, relatesTo, owner, wait),
      [HANDOVER_RELATES_TO]: relatesTo,
    },
    signal: AbortSignal.timeout(wait),
    headersTimeoutMs: wait,
    permit: (u) => u === url,
    // The owner is a replica of ours, reached at its pod address: it must present our identity.
    tlsProfile: d.gateway.tlsIdentity ? { sameIdentityAs: d.gateway.tlsIdentity } : undefined,
  });
  res.body.resume();
  return res.status;
}

/** The largest response any community may send (per-endpoint limits apply once the request is known). */
function maxResponseBytes(gw: Gateway): number {
  let max = 16 * 1024 * 1024;
  for (const c of gw.directory.communities) {
    for (const e of Object.values(c.endpoints)) if (e && e.maxResponseBytes > max) max = e.maxResponseBytes;
  }
  return max;
}

function answer(res: ServerResponse, status: number, fault?: SoapFault): void {
  if (res.headersSent || res.destroyed) return;
  if (!fault) {
    res.writeHead(status, { 'content-length': '0' }).end();
    return;
  }
  res.writeHead(status, { 'content-type': SOAP_XML, connection: 'close' }).end(encodeFault(fault));
}
