import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Express } from 'express';
import { auditRejectedAsyncResponse } from '../audit/gateway';
import { INBOUND_LIMIT_DEFAULTS } from '../directory/load';
import type { RemoteCommunity } from '../directory/types';
import { callerOf } from '../inbound/server';
import { MtomError } from '../mtom/errors';
import { readSoapMessage } from '../mtom/read';
import type { AttachmentStream, IncomingSoapMessage } from '../mtom/types';
import { MtomWriter } from '../mtom/writer';
import { responseXmlLimits } from '../pipeline/dispatch';
import type { Caller, Gateway } from '../pipeline/transaction';
import { decodeEnvelope, decodeEnvelopeHead, type Addressing, type SoapEnvelope } from '../soap/envelope';
import { findBodyStart } from '../soap/envelope-head';
import { encodeFault, SoapFault, WSA_FAULT_ACTION } from '../soap/fault';
import type { Logger } from '../util/log';
import { checkHandover, HANDOVER_HEADER, HANDOVER_RELATES_TO, signHandover } from './handover';
import { identityFits } from './reply-to';
import type { ClaimState, CorrelationStore, PendingRecord } from './store';
import { Gate, HEAD_BYTES, UNAUTHENTICATED_BYTES, UnauthenticatedBudget } from './unauthenticated';
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
  const budget = new UnauthenticatedBudget();
  app.post(HANDOVER_PATH, (req, res) => void receive(d, budget, req, res, true));
  app.post(ASYNC_RESPONSE_PATH, (req, res) => void receive(d, budget, req, res, false));
}

const SOAP_XML = 'application/soap+xml; charset=UTF-8';

/** A response refused (or, with status 202 and no fault, acknowledged) from its head alone. */
class EarlyAnswer extends Error {
  constructor(
    readonly status: number,
    readonly fault?: SoapFault,
  ) {
    super(fault?.reason ?? `answered ${status}`);
  }
}

/** What the head of a response says it answers, once that was checked. */
type Identified = {
  key: string;
  relatesTo: string;
  action: string;
  /** When the request it answers stops waiting (epoch ms). */
  deadline: number;
  /** Largest response the endpoint asked may send. */
  maxBytes: number;
} & ({ kind: 'here'; waiter: Waiter } | { kind: 'owner'; rec: PendingRecord });

/**
 * Ends the connection once the answer left when the request body was not read to its end: nothing
 * more is read, the answer is followed by a FIN, and the socket is destroyed a moment later. Destroyed
 * at once, the unread body makes the kernel reset the connection, and a sender still writing can lose
 * the answer (the reset discards what it had not read yet).
 */
function closeUnread(req: IncomingMessage, res: ServerResponse): void {
  res.once('finish', () => {
    if (req.complete) return;
    const socket = req.socket;
    socket.pause();
    socket.end();
    setTimeout(() => socket.destroy(), UNREAD_LINGER_MS).unref();
  });
}

const UNREAD_LINGER_MS = 500;

async function receive(
  d: ReceiverDeps,
  budget: UnauthenticatedBudget,
  req: IncomingMessage,
  res: ServerResponse,
  handover: boolean,
): Promise<void> {
  const caller = callerOf(req);
  const log = d.log.child({ component: 'async-receiver', from: caller.remoteAddress, handover });
  closeUnread(req, res);
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
  // A hand-over is authenticated by its HMAC already; anything else is not, until its head is read.
  const release = handover ? () => undefined : budget.take(caller.remoteAddress);
  if (!release) {
    log.warn('async response refused: too many unauthenticated responses in progress from this address');
    return answer(
      res,
      429,
      SoapFault.receiver('too many async responses in progress from this address; retry later'),
    );
  }
  const limits = d.gateway.directory.inboundLimits ?? INBOUND_LIMIT_DEFAULTS;
  const gate = new Gate(handover ? Infinity : UNAUTHENTICATED_BYTES, maxResponseBytes(d.gateway));
  req.on('error', (e) => gate.destroy(e));
  req.on('close', () => {
    if (!req.complete) gate.destroy(new MtomError('truncated', 'the sender went away'));
  });
  const source = req.pipe(gate);
  // Total time: the head within the header timeout; the rest by the deadline of the request it answers.
  const clock = new TimeLimit(() => {
    if (!req.complete) gate.destroy(new MtomError('timeout', 'async response not received in time'));
  });
  clock.after(limits.headersTimeoutMs);
  const rootMax = Math.max(d.gateway.limits.maxRetrieveRootBytes, 1);
  const xmlLimits = {
    ...d.gateway.limits.xml,
    maxBytes: rootMax,
    maxTextLength: rootMax,
    maxElements: 2_000_000,
  };
  let found: Identified | undefined;
  let msg: IncomingSoapMessage;
  try {
    msg = await readSoapMessage(
      source,
      req.headers['content-type'],
      {
        maxRootBytes: rootMax,
        maxPartHeaderBytes: 16 * 1024,
        maxParts: 100_000,
        maxTotalBytes: gate.limit,
        // A sender that stops sending (our own backpressure does not count) is cut off like a
        // request body; the whole answer is bounded by the deadline of the request it answers.
        idleTimeoutMs: limits.bodyIdleTimeoutMs,
      },
      {
        head: {
          maxBytes: HEAD_BYTES,
          check: async (sofar, complete) => {
            const scan = findBodyStart(sofar);
            if (scan === 'more' && !complete) return 'more';
            if (scan === 'malformed') throw SoapFault.sender('SOAP envelope not readable');
            if (scan === 'more') throw SoapFault.sender('soap:Body missing');
            const wsa = decodeEnvelopeHead(sofar.subarray(0, scan.bodyAt), scan.rootQname, xmlLimits);
            found = await identify(d, req, caller, wsa, handover, log);
            // The sender is known: read on, bounded by what the request it answers allows.
            release();
            gate.limit = found.maxBytes;
            clock.at(found.deadline + d.graceMs);
            gate.open();
            return 'pass';
          },
        },
      },
    );
  } catch (e) {
    release();
    clock.clear();
    if (e instanceof EarlyAnswer) return answer(res, e.status, e.fault);
    if (e instanceof SoapFault) {
      log.warn('async response refused', { reason: e.reason });
      return answer(res, e.httpStatus, e);
    }
    const timeout = e instanceof MtomError && e.code === 'timeout';
    log.warn('async response not readable', { reason: (e as Error).message });
    return answer(
      res,
      timeout ? 408 : 400,
      SoapFault.sender(`message not readable: ${(e as Error).message}`),
    );
  }
  const drop = () => void msg.attachments.discard();
  const stop = (status: number, fault?: SoapFault) => {
    drop();
    clock.clear();
    answer(res, status, fault);
  };
  let env: SoapEnvelope;
  try {
    env = decodeEnvelope(msg.envelope, xmlLimits, false);
  } catch (e) {
    const f = e instanceof SoapFault ? e : SoapFault.sender((e as Error).message);
    log.warn('async response not a SOAP 1.2 envelope', { reason: f.reason });
    return stop(f.httpStatus, f);
  }
  const id = found as Identified;
  if (env.wsa.relatesTo !== id.relatesTo || env.wsa.action !== id.action) {
    log.warn('async response refused: its envelope does not match its head');
    return stop(400, SoapFault.sender('the envelope does not match its header', 'InvalidAddressingHeader'));
  }
  const ttl = (deadline: number) => deadline - Date.now() + d.graceMs;
  if (id.kind === 'here') {
    await landHere(d, id.waiter, { msg, env, source, limit: gate, caller, handover, log, res, ttl });
    clock.clear();
    return;
  }
  const rec = id.rec;
  let claim: 'first' | ClaimState;
  try {
    claim = await d.store.claim(id.key, 'answered', ttl(rec.deadline));
  } catch (e) {
    return stop(503, storeUnavailable(e));
  }
  if (claim !== 'first' && claim !== 'answered') {
    log.info('async response after the request was given up: ignored', {
      relatesTo: id.relatesTo,
      state: claim,
    });
    return stop(202);
  }
  if (claim === 'answered') {
    // Its request still waits (its pending record was just read), so the earlier claim may be an
    // orphan: a claim whose reply was lost when the Redis primary failed, or a hand-over that failed.
    // The owner is the arbiter: it takes one answer and tells us 410 for any other.
    log.info('async response claimed before while its request still waits: handing over', {
      relatesTo: id.relatesTo,
    });
  }
  let url: string | undefined;
  try {
    url = rec.owner === d.replica ? undefined : await d.store.replicaUrl(rec.owner);
  } catch (e) {
    // Redis went away between the claim and this read (a failover): the sender's retry will do.
    return stop(503, storeUnavailable(e));
  }
  if (!url && d.key && d.store.recovering()) {
    log.warn('async response deferred: owner replica not registered yet after a Redis reconnect', {
      relatesTo: id.relatesTo,
      owner: rec.owner,
    });
    return stop(503, storeRecovering());
  }
  if (!url || !d.key) {
    log.warn('async response cannot be handed over: its request is lost', {
      relatesTo: id.relatesTo,
      owner: rec.owner,
      reason: !d.key ? 'hand-over not configured' : 'owner replica unknown',
    });
    return stop(202);
  }
  try {
    const status = await handOver(d, `${url}${HANDOVER_PATH}`, id.relatesTo, rec.owner, msg, rec.deadline);
    clock.clear();
    if (status >= 200 && status < 300) {
      log.info('async response handed over to the waiting replica', {
        relatesTo: id.relatesTo,
        owner: rec.owner,
      });
      return answer(res, 202);
    }
    log.warn('hand-over refused by the owner replica', { relatesTo: id.relatesTo, status });
    // 410: the owner stopped waiting (deadline) — a late answer, not the sender's fault.
    if (status === 410) return answer(res, 202);
    return answer(res, 502, SoapFault.receiver('hand-over to the waiting replica failed'));
  } catch (e) {
    log.warn('hand-over failed', { relatesTo: id.relatesTo, reason: (e as Error).message });
    return stop(502, SoapFault.receiver('hand-over to the waiting replica failed'));
  }
}

/**
 * From the head of a response alone: does it answer a request of ours that is still waiting, with
 * the action that request expects, and does it come from the community asked (R30)? Throws an
 * EarlyAnswer (refusal, or 202 for a duplicate / late answer) otherwise — before the body is read.
 */
async function identify(
  d: ReceiverDeps,
  req: IncomingMessage,
  caller: Caller,
  wsa: Addressing,
  handover: boolean,
  log: Logger,
): Promise<Identified> {
  const relatesTo = wsa.relatesTo;
  const key = messageKey(relatesTo);
  if (!key || !relatesTo) {
    log.warn('async response rejected: no RelatesTo naming one of our requests', {
      relatesTo: relatesTo?.slice(0, 100),
    });
    rejected(d, caller, 'wsa:RelatesTo does not name a request of this gateway', relatesTo);
    throw new EarlyAnswer(
      400,
      SoapFault.sender('wsa:RelatesTo does not name a request of this gateway', 'InvalidAddressingHeader'),
    );
  }
  if (handover && relatesTo !== req.headers[HANDOVER_RELATES_TO]) {
    rejected(d, caller, 'hand-over RelatesTo does not match the message', relatesTo, 8);
    throw new EarlyAnswer(403, SoapFault.sender('hand-over RelatesTo does not match the message'));
  }
  const waiter = d.calls.waiters.get(key);
  let rec: PendingRecord | undefined = waiter?.record;
  if (!waiter) {
    if (handover) {
      log.info('hand-over for a request no longer waiting here', { relatesTo });
      throw new EarlyAnswer(410, SoapFault.sender('the request is no longer waiting for a response'));
    }
    try {
      rec = await d.store.getPending(key);
    } catch (e) {
      log.warn('async response refused: correlation store unavailable', { reason: (e as Error).message });
      throw new EarlyAnswer(503, SoapFault.receiver('correlation store unavailable; retry later'));
    }
    if (!rec) {
      const state = await d.store.claimState(key).catch(() => undefined);
      if (state) {
        log.info(
          state === 'answered'
            ? 'duplicate async response ignored'
            : `async response after the request was ${state}: ignored`,
          { relatesTo },
        );
        throw new EarlyAnswer(202);
      }
      if (d.store.recovering()) {
        // After a failover the owner may not have written its record again yet: let the sender retry.
        log.warn('async response deferred: no pending request yet after a Redis reconnect', { relatesTo });
        throw new EarlyAnswer(503, storeRecovering());
      }
      log.warn('async response rejected: RelatesTo matches no pending request', { relatesTo });
      rejected(d, caller, 'wsa:RelatesTo matches no pending request', relatesTo);
      throw new EarlyAnswer(
        400,
        SoapFault.sender('wsa:RelatesTo matches no pending request', 'InvalidAddressingHeader'),
      );
    }
  }
  const pending = rec as PendingRecord;
  if (!handover) {
    const community =
      waiter?.community ??
      d.gateway.directory.communities.find((c) => c.homeCommunityId === pending.community);
    const mismatch = senderMismatch(caller, community, pending.community);
    if (mismatch) {
      log.warn('async response rejected: not from the community asked', {
        relatesTo,
        community: pending.community,
        reason: mismatch,
      });
      rejected(d, caller, `response refused: ${mismatch}`, relatesTo, 8);
      throw new EarlyAnswer(403, SoapFault.sender(`response refused: ${mismatch}`));
    }
  }
  // The answer to the request must carry its response action (or be a fault). Anything else is
  // refused without being taken as the answer, so that the right one can still come.
  if (wsa.action !== pending.action && wsa.action !== WSA_FAULT_ACTION) {
    const fault = wsa.action
      ? SoapFault.sender(
          `wsa:Action ${wsa.action.slice(0, 200)} is not the response to this request (expected ${pending.action})`,
          'ActionNotSupported',
        )
      : SoapFault.sender('WS-Addressing header Action is required', 'MessageAddressingHeaderRequired');
    log.warn('async response refused: wrong action', { relatesTo, action: wsa.action?.slice(0, 200) });
    throw new EarlyAnswer(400, fault);
  }
  const maxBytes = waiter
    ? waiter.call.target.endpoint.maxResponseBytes
    : (endpointMaxBytes(d.gateway, pending) ?? maxResponseBytes(d.gateway));
  const base = { key, relatesTo, action: wsa.action, deadline: pending.deadline, maxBytes };
  return waiter ? { ...base, kind: 'here', waiter } : { ...base, kind: 'owner', rec: pending };
}

/** The maxResponseBytes of the endpoint a pending request went to, when the directory still has it. */
function endpointMaxBytes(gw: Gateway, rec: PendingRecord): number | undefined {
  for (const c of gw.directory.communities) {
    if (c.homeCommunityId !== rec.community) continue;
    for (const e of Object.values(c.endpoints)) if (e?.url === rec.endpoint) return e.maxResponseBytes;
  }
  return undefined;
}

/** One timer bounding the total time of a reception; re-armed when the bound changes. */
class TimeLimit {
  private timer?: NodeJS.Timeout;
  constructor(private readonly onLate: () => void) {}
  after(ms: number): void {
    this.clear();
    this.timer = setTimeout(this.onLate, Math.max(1, ms));
    this.timer.unref();
  }
  at(epochMs: number): void {
    this.after(epochMs - Date.now());
  }
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

interface Arrival {
  msg: IncomingSoapMessage;
  env: SoapEnvelope;
  source: Readable;
  limit: Gate;
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
  const failed = a.source.errored;
  if (failed)
    return answer(
      res,
      failed instanceof MtomError && failed.code === 'timeout' ? 408 : 400,
      SoapFault.sender(`message not readable: ${failed.message}`),
    );
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

/** 503 answers: the sender retries (the answer is not lost, it waits at the sender). */
const storeUnavailable = (e: unknown) =>
  SoapFault.receiver(`correlation store unavailable (${(e as Error).message}); retry later`);
const storeRecovering = () => SoapFault.receiver('correlation store recovering; retry later');

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

/**
 * Attachments whose end (last part read, or discarded) resolves `done`; so does a sender that went
 * away or failed. Not the end of the sender's body: a small answer is read off the socket whole while
 * its envelope is parsed, long before the transaction takes its parts.
 */
export function trackConsumption(
  msg: IncomingSoapMessage,
  source: Readable,
): { attachments: AttachmentStream; done: Promise<void> } {
  if (!msg.isMtom) return { attachments: msg.attachments, done: Promise.resolve() };
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  source.once('close', () => {
    if (!source.readableEnded) finish();
  });
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
