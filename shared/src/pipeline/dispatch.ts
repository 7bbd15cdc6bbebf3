import { Writable } from 'node:stream';
import { quietly } from '../util/quietly';
import { CallFailure } from '../outbound/client';
import { MtomError } from '../mtom/errors';
import { MtomWriter } from '../mtom/writer';
import { readSoapMessage } from '../mtom/read';
import { decodeEnvelope, encodeEnvelope, type SoapEnvelope } from '../soap/envelope';
import { newMessageId } from '../soap/ids';
import { NS } from '../xml/ns';
import type { XmlLimits } from '../xml/parse';
import type { Call, Ctx, Outcome, SubResponse } from './transaction';

/** Hooks later stages add around each sub-request (circuit breaker, metrics, async exchange). */
export interface CallHooks {
  /** Throws CallFailure to refuse the call without sending (e.g. an open circuit). */
  before?(call: Call<unknown>, ctx: Ctx): void;
  after?(call: Call<unknown>, ctx: Ctx, outcome: Outcome<unknown>): void;
  /** Extra HTTP headers for this call's request (e.g. W3C traceparent). */
  headers?(call: Call<unknown>, ctx: Ctx): Record<string, string>;
  /** Bytes on the wire of a synchronous call, once its response body is consumed or dropped (metrics). */
  transferred?(call: Call<unknown>, ctx: Ctx, bytes: { sent: number; received: number }): void;
  /** Replaces the synchronous exchange for this call (e.g. Appendix V async), or returns undefined. */
  exchange?(call: Call<unknown>, ctx: Ctx, envelope: OutgoingRequest): Promise<SubResponse> | undefined;
}

export interface OutgoingRequest {
  messageId: string;
  contentType: string;
  body: Buffer;
}

/** Runs every call at once; each settles into an Outcome, never a rejection. */
export async function dispatch<Sub>(
  calls: Call<Sub>[],
  ctx: Ctx,
  hooks: CallHooks = {},
): Promise<Outcome<Sub>[]> {
  const slots = await reserveSlots(calls, ctx);
  return Promise.all(calls.map((c, i) => runCall(c, ctx, hooks, slots[i])));
}

/**
 * The connection slots of a fan-out are taken together per endpoint: a merge needs every answer
 * before it can stream, so holding some slots while waiting for others could deadlock fan-outs.
 * Plans never put more calls on one endpoint than its maxConcurrent.
 */
async function reserveSlots(calls: Call<unknown>[], ctx: Ctx): Promise<(SlotResult | undefined)[]> {
  const byUrl = new Map<string, number[]>();
  calls.forEach((c, i) => byUrl.set(c.target.endpoint.url, [...(byUrl.get(c.target.endpoint.url) ?? []), i]));
  const out: (SlotResult | undefined)[] = new Array(calls.length);
  await Promise.all(
    [...byUrl.values()].map(async (idx) => {
      const ep = calls[idx[0]].target.endpoint;
      const n = Math.min(idx.length, ep.maxConcurrent);
      try {
        const releases = await ctx.gateway.outbound.reserve(
          ep,
          n,
          ctx.signal,
          ctx.deadline.cap(ep.timeoutMs),
        );
        idx.forEach(
          (i, k) => (out[i] = releases[k] ? { slot: releases[k] } : { failure: tooMany(ep.maxConcurrent) }),
        );
      } catch (e) {
        const failure =
          e instanceof CallFailure && e.kind !== 'aborted'
            ? new CallFailure('busy', 'no free connection slot before the timeout')
            : toFailure(e, ctx);
        for (const i of idx) out[i] = { failure };
      }
    }),
  );
  return out;
}

type SlotResult = { slot: () => void; failure?: undefined } | { slot?: undefined; failure: CallFailure };

function tooMany(limit: number): CallFailure {
  return new CallFailure('busy', `more than ${limit} concurrent requests to one endpoint in one transaction`);
}

async function runCall<Sub>(
  call: Call<Sub>,
  ctx: Ctx,
  hooks: CallHooks,
  reserved: SlotResult | undefined,
): Promise<Outcome<Sub>> {
  const t0 = Date.now();
  const log = ctx.log.child({ target: call.target.label, action: call.action });
  let outcome: Outcome<Sub>;
  let slot = reserved?.slot;
  try {
    if (reserved?.failure) throw reserved.failure;
    hooks.before?.(call as Call<unknown>, ctx);
    const request = await buildRequest(call, ctx);
    const exchanged = hooks.exchange?.(call as Call<unknown>, ctx, request);
    if (exchanged) {
      slot?.();
      slot = undefined;
    }
    const taken = slot;
    slot = undefined;
    const res = exchanged ? await exchanged : await exchangeSync(call, ctx, request, hooks, taken);
    const value = await withTimeout(call.read(res, ctx), ctx, call, t0, () =>
      quietly(res.attachments.discard()),
    ).catch((e: unknown) => {
      quietly(res.attachments.discard());
      throw e;
    });
    outcome = { call, ok: true, value, ms: Date.now() - t0 };
    log.debug('sub-request answered', { ms: outcome.ms });
  } catch (e) {
    slot?.();
    const failure = toFailure(e, ctx);
    outcome = { call, ok: false, failure, errors: call.failed(failure), ms: Date.now() - t0 };
    // Faults and unreadable answers quote the peer's text, which may name a patient: debug only (no PHI at info).
    const quotesPeer = failure.kind === 'fault' || failure.kind === 'bad-response';
    log.warn('sub-request failed', {
      kind: failure.kind,
      reason: quotesPeer ? undefined : failure.message,
      faultCode: failure.kind === 'fault' ? /^SOAP fault: (\S+):/.exec(failure.message)?.[1] : undefined,
      ms: outcome.ms,
    });
    if (quotesPeer) log.debug('sub-request failure detail', { reason: failure.message });
  }
  hooks.after?.(call as Call<unknown>, ctx, outcome as Outcome<unknown>);
  return outcome;
}

async function buildRequest(call: Call<unknown>, ctx: Ctx): Promise<OutgoingRequest> {
  const messageId = newMessageId();
  return { messageId, ...(await encodeSubRequest(call, ctx, messageId)) };
}

/**
 * A sub-request's SOAP envelope as an HTTP body: plain SOAP 1.2, or (ITI-39/43, RAD-69/75) an MTOM
 * package holding only the root part. `replyTo` is set for the asynchronous exchange.
 */
export async function encodeSubRequest(
  call: Call<unknown>,
  ctx: Ctx,
  messageId: string,
  replyTo?: string,
): Promise<{ contentType: string; body: Buffer }> {
  const xml = encodeEnvelope({
    action: call.action,
    messageId,
    to: call.target.endpoint.url,
    replyTo,
    body: call.body,
    extraHeaders: ctx.forwardHeaders,
    request: true,
  });
  if (!call.mtom) {
    return {
      contentType: `application/soap+xml; charset=UTF-8; action="${call.action}"`,
      body: Buffer.from(xml),
    };
  }
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  const w = new MtomWriter(sink, { action: call.action });
  await w.writeRoot(xml);
  await w.end();
  return { contentType: w.contentType, body: Buffer.concat(chunks) };
}

/** Limits for reading a sub-response envelope. */
export function responseXmlLimits(ctx: Ctx, call: Call<unknown>): Partial<XmlLimits> {
  const retrieve = call.mtom;
  const max = retrieve
    ? Math.min(ctx.gateway.limits.maxRetrieveRootBytes, call.target.endpoint.maxResponseBytes)
    : call.target.endpoint.maxResponseBytes;
  return {
    ...ctx.gateway.limits.xml,
    maxBytes: max,
    maxTextLength: max,
    maxElements: 2_000_000,
    treeDepth: call.responseTreeDepth ?? Number.MAX_SAFE_INTEGER,
  };
}

async function exchangeSync(
  call: Call<unknown>,
  ctx: Ctx,
  req: OutgoingRequest,
  hooks: CallHooks,
  slot: (() => void) | undefined,
): Promise<SubResponse> {
  const timeoutMs = ctx.deadline.cap(call.target.endpoint.timeoutMs);
  if (timeoutMs <= 0) {
    slot?.();
    throw new CallFailure('timeout', 'no time left before the deadline');
  }
  // Until the root part is in, the call is bounded by its timeout (undici's own timers are coarse);
  // after that the body streams under the endpoint's idle timeout, cancelled only with the request.
  const phase = new AbortController();
  const timer = setTimeout(
    () => phase.abort(new CallFailure('timeout', `no answer within ${Math.round(timeoutMs)} ms`)),
    timeoutMs,
  );
  const signal = AbortSignal.any([ctx.signal, phase.signal]);
  try {
    const res = await ctx.gateway.outbound.post({
      endpoint: call.target.endpoint,
      contentType: req.contentType,
      body: req.body,
      signal,
      headersTimeoutMs: timeoutMs + 1000,
      headers: hooks.headers?.(call, ctx),
      slot,
    });
    if (hooks.transferred) reportTransfer(call, ctx, hooks, req.body.length, res.body);
    const limits = responseXmlLimits(ctx, call);
    const onAbort = () => res.body.destroy(phase.signal.reason as Error);
    phase.signal.addEventListener('abort', onAbort, { once: true });
    const msg = await readSoapMessage(res.body, res.contentType, {
      maxRootBytes: limits.maxBytes ?? call.target.endpoint.maxResponseBytes,
      maxPartHeaderBytes: 16 * 1024,
      maxParts: 100_000,
      maxTotalBytes: call.target.endpoint.maxResponseBytes,
    })
      .catch((e: unknown) => {
        res.body.destroy();
        if (phase.signal.aborted) throw phase.signal.reason;
        if (res.status !== 200)
          throw new CallFailure('http-status', `HTTP ${res.status} without a SOAP answer`);
        throw e;
      })
      .finally(() => phase.signal.removeEventListener('abort', onAbort));
    return checkAnswer(call, ctx, req, res.status, msg);
  } catch (e) {
    if (phase.signal.aborted && !(e instanceof CallFailure && e.kind === 'timeout'))
      throw phase.signal.reason;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function checkAnswer(
  call: Call<unknown>,
  ctx: Ctx,
  req: OutgoingRequest,
  status: number,
  msg: { envelope: Buffer; attachments: SubResponse['attachments'] },
): SubResponse {
  let envelope: SoapEnvelope;
  try {
    envelope = decodeEnvelope(msg.envelope, responseXmlLimits(ctx, call), false);
  } catch (e) {
    quietly(msg.attachments.discard());
    throw new CallFailure(
      'bad-response',
      `answer is not a usable SOAP 1.2 envelope: ${(e as Error).message}`,
    );
  }
  if (envelope.payload.is(NS.soap, 'Fault')) {
    quietly(msg.attachments.discard());
    throw new CallFailure('fault', `SOAP fault: ${faultReason(envelope)}`);
  }
  if (status !== 200) {
    quietly(msg.attachments.discard());
    throw new CallFailure('http-status', `HTTP ${status}`);
  }
  if (envelope.wsa.relatesTo !== undefined && envelope.wsa.relatesTo !== req.messageId) {
    quietly(msg.attachments.discard());
    throw new CallFailure('bad-response', 'wsa:RelatesTo does not match the request MessageID');
  }
  if (envelope.wsa.action !== undefined && envelope.wsa.action !== call.responseAction) {
    ctx.log.warn('unexpected response action', { target: call.target.label, action: envelope.wsa.action });
  }
  return { envelope, attachments: msg.attachments };
}

export function faultReason(env: SoapEnvelope): string {
  const text = env.payload.child(NS.soap, 'Reason')?.child(NS.soap, 'Text')?.trimmedText();
  const code = env.payload.child(NS.soap, 'Code')?.child(NS.soap, 'Value')?.trimmedText();
  return `${code ?? 'unknown code'}: ${(text ?? 'no reason given').slice(0, 300)}`;
}

/** Bounds a stage of a call by the call's timeout (counted from `t0`) and the overall deadline. */
function withTimeout<T>(
  p: Promise<T>,
  ctx: Ctx,
  call: Call<unknown>,
  t0: number,
  onTimeout: () => void,
): Promise<T> {
  const left = Math.min(call.target.endpoint.timeoutMs - (Date.now() - t0), ctx.deadline.remaining());
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        onTimeout();
        reject(
          new CallFailure(
            'timeout',
            `no complete answer within ${call.target.endpoint.timeoutMs} ms or the deadline`,
          ),
        );
      },
      Math.max(1, left),
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function toFailure(e: unknown, ctx: Ctx): CallFailure {
  if (e instanceof CallFailure) return e;
  if (ctx.signal.aborted) return new CallFailure('aborted', 'request cancelled');
  if (e instanceof MtomError) return new CallFailure('bad-response', `malformed answer: ${e.message}`);
  return new CallFailure('bad-response', (e as Error)?.message ?? String(e));
}

/** Reports the bytes of a call when its (byte-counting) response body closes. */
function reportTransfer(
  call: Call<unknown>,
  ctx: Ctx,
  hooks: CallHooks,
  sent: number,
  body: { once(ev: 'close', f: () => void): unknown },
): void {
  body.once('close', () => {
    const received = (body as { bytes?: unknown }).bytes;
    try {
      hooks.transferred?.(call, ctx, { sent, received: typeof received === 'number' ? received : 0 });
    } catch {
      // observers never break a call
    }
  });
}
