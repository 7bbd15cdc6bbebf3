import { createHash } from 'node:crypto';
import { recordEarlyFailure, sendFault, type ServedRun } from '../pipeline/engine';
import type { Delivery, Gateway } from '../pipeline/transaction';
import { encodeEnvelope } from '../soap/envelope';
import { encodeFault, SoapFault } from '../soap/fault';
import { isAnonymous, newMessageId } from '../soap/ids';
import type { Logger } from '../util/log';
import { deliver, type OutgoingMessage } from './deliver';
import { matchReplyTo, replyToPatternsFor } from './reply-to';
import type { CorrelationStore } from './store';

export interface ServedDeps {
  gateway: Gateway;
  store: CorrelationStore;
  replica: string;
  /** How long delivery to ReplyTo is retried. */
  deliveryWindowMs: number;
  attemptTimeoutMs: number;
  graceMs: number;
  log: Logger;
  /** Runs in progress, aborted on close. */
  inflight: Set<AbortController>;
}

/**
 * Serves a request that asked for an asynchronous reply (ITI TF-2 Appendix V): checks that the
 * directory lets this requester name its ReplyTo (and FaultTo), answers HTTP 202 with no body,
 * runs the transaction, then POSTs the response to ReplyTo (RelatesTo = the request's MessageID,
 * To = ReplyTo, a new MessageID) — or a fault to FaultTo, else ReplyTo. A request whose MessageID
 * was seen before is acknowledged and not run again.
 */
export function servedHook(d: ServedDeps): (run: ServedRun) => Promise<void> {
  return async (run) => {
    const { tx, ctx, httpRes } = run;
    const wsa = ctx.envelope.wsa;
    const requestId = wsa.messageId as string;
    const refuse = (fault: SoapFault) => {
      ctx.log.warn('asynchronous request refused', { reason: fault.reason });
      sendFault(httpRes, fault, requestId);
      recordEarlyFailure(tx, d.gateway, ctx, ctx.envelope, fault);
    };
    const patterns = replyToPatternsFor(d.gateway, ctx.caller);
    const replyTo = matchReplyTo(patterns, wsa.replyTo);
    const faultTo = isAnonymous(wsa.faultTo) ? replyTo : matchReplyTo(patterns, wsa.faultTo);
    if (!replyTo || !faultTo) {
      const which = !replyTo ? 'ReplyTo' : 'FaultTo';
      return refuse(
        SoapFault.sender(
          `wsa:${which} is not an address this gateway may send to for this requester`,
          'InvalidAddressingHeader',
        ),
      );
    }
    const remaining = ctx.deadline.remaining();
    const key = createHash('sha256').update(requestId).digest('base64url');
    let first: boolean;
    try {
      if (!d.store.available()) throw new Error('not connected');
      first = await d.store.markServed(key, d.replica, remaining + d.deliveryWindowMs + d.graceMs);
    } catch (e) {
      ctx.log.warn('correlation store unavailable: asynchronous request refused', {
        reason: (e as Error).message,
      });
      return refuse(
        new SoapFault(
          'Receiver',
          'the asynchronous exchange is unavailable right now (correlation store unreachable); retry later or send the request synchronously',
          'EndpointUnavailable',
        ),
      );
    }
    httpRes.writeHead(202, { 'content-length': '0' }).end();
    if (!first) {
      ctx.log.info('asynchronous request with a MessageID seen before: acknowledged, not run again');
      return;
    }
    const abort = new AbortController();
    d.inflight.add(abort);
    try {
      await serve(
        d,
        run,
        { replyTo, faultTo, requestId },
        AbortSignal.any([abort.signal, ctx.deadline.signal()]),
        abort.signal,
      );
    } finally {
      d.inflight.delete(abort);
    }
  };
}

async function serve(
  d: ServedDeps,
  run: ServedRun,
  a: { replyTo: string; faultTo: string; requestId: string },
  signal: AbortSignal,
  closing: AbortSignal,
): Promise<void> {
  const { tx, ctx } = run;
  const send = (url: string, action: string, message: OutgoingMessage) =>
    deliver({
      outbound: d.gateway.outbound,
      url,
      action,
      message,
      windowMs: d.deliveryWindowMs,
      attemptTimeoutMs: d.attemptTimeoutMs,
      signal: closing,
      log: ctx.log,
      peerIdentity: ctx.caller.community?.identity ?? ctx.caller.consumer?.identity,
    });
  let delivery: Delivery;
  try {
    const { reply, audited } = await run.execute(signal);
    const envelope = encodeEnvelope({
      action: tx.responseAction,
      messageId: newMessageId(),
      relatesTo: a.requestId,
      to: ctx.envelope.wsa.replyTo,
      body: reply.payload,
      request: false,
    });
    const message: OutgoingMessage =
      reply.kind === 'xml' ? { kind: 'xml', xml: envelope } : { kind: 'mtom', envelope, parts: reply.parts };
    delivery = await send(a.replyTo, tx.responseAction, message);
    audited(delivery);
  } catch (e) {
    const fault =
      e instanceof SoapFault ? e : SoapFault.receiver('the gateway could not process the request');
    if (fault.senderFault)
      ctx.log.warn('asynchronous request refused', { fault: fault.reason, code: fault.code });
    else ctx.log.error('asynchronous transaction failed', { error: e as Error });
    const to = isAnonymous(ctx.envelope.wsa.faultTo) ? ctx.envelope.wsa.replyTo : ctx.envelope.wsa.faultTo;
    delivery = await send(a.faultTo, 'http://www.w3.org/2005/08/addressing/soap/fault', {
      kind: 'xml',
      xml: encodeFault(fault, a.requestId, to),
    });
    recordEarlyFailure(tx, d.gateway, ctx, ctx.envelope, fault);
  }
  if (delivery.ok) ctx.log.info('asynchronous response delivered');
  else ctx.log.warn('asynchronous response not delivered', { reason: delivery.error?.message });
}
