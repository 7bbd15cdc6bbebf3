import { randomUUID } from 'node:crypto';
import type { RemoteCommunity } from '../directory/types';
import { CallFailure } from '../outbound/client';
import { readSoapMessage } from '../mtom/read';
import type { AttachmentStream } from '../mtom/types';
import { encodeSubRequest, faultReason, responseXmlLimits, type OutgoingRequest } from '../pipeline/dispatch';
import type { Call, Ctx, Gateway, SubResponse } from '../pipeline/transaction';
import { decodeEnvelope, type SoapEnvelope } from '../soap/envelope';
import type { Logger } from '../util/log';
import { NS } from '../xml/ns';
import type { ClaimState, CorrelationStore, PendingRecord } from './store';

/** A response that arrived for a pending request. */
export interface Landed {
  envelope: SoapEnvelope;
  attachments: AttachmentStream;
}

/** A sub-request of ours waiting in this process for its async response. */
export interface Waiter {
  key: string;
  record: PendingRecord;
  community: RemoteCommunity;
  call: Call<unknown>;
  ctx: Ctx;
  land(m: Landed): void;
}

export interface AsyncCallsDeps {
  gateway: Gateway;
  store: CorrelationStore;
  replica: string;
  /** Our /async-response address, as peers reach it. */
  replyTo: () => string;
  graceMs: number;
  log: Logger;
}

const UUID_URN = /^urn:uuid:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** The key of one of our MessageIDs (`urn:uuid:…`, all we ever send), or undefined. */
export function messageKey(messageId: string | undefined): string | undefined {
  return messageId ? UUID_URN.exec(messageId)?.[1]?.toLowerCase() : undefined;
}

/**
 * The initiating side's use of the async exchange: sub-requests to a community marked `async` go
 * out with ReplyTo = our /async-response, and wait (at most the endpoint's timeout and the
 * transaction's deadline) for the response to land here, on this replica or handed over by another.
 */
export class AsyncCalls {
  readonly waiters = new Map<string, Waiter>();
  private readonly fanouts = new WeakMap<Ctx, string>();

  constructor(private readonly d: AsyncCallsDeps) {
    d.store.onReady(() => void this.restore());
  }

  exchange(call: Call<unknown>, ctx: Ctx, req: OutgoingRequest): Promise<SubResponse> | undefined {
    const community = call.target.community;
    if (call.target.kind !== 'community' || !community?.async) return undefined;
    if (!this.d.store.available()) {
      ctx.log.warn('correlation store unavailable: sending synchronously', { target: call.target.label });
      return undefined;
    }
    return this.run(call, ctx, req, community);
  }

  private fanout(ctx: Ctx): string {
    let id = this.fanouts.get(ctx);
    if (!id) {
      id = randomUUID();
      this.fanouts.set(ctx, id);
    }
    return id;
  }

  private async run(
    call: Call<unknown>,
    ctx: Ctx,
    req: OutgoingRequest,
    community: RemoteCommunity,
  ): Promise<SubResponse> {
    const key = messageKey(req.messageId);
    if (!key) throw new CallFailure('bad-response', 'request MessageID is not a urn:uuid');
    const timeoutMs = ctx.deadline.cap(call.target.endpoint.timeoutMs);
    if (timeoutMs <= 0) throw new CallFailure('timeout', 'no time left before the deadline');
    const record: PendingRecord = {
      owner: this.d.replica,
      fanout: this.fanout(ctx),
      community: community.homeCommunityId,
      action: call.responseAction,
      deadline: Date.now() + timeoutMs,
      endpoint: call.target.endpoint.url,
    };
    const ttl = () => record.deadline - Date.now() + this.d.graceMs;
    let got: Landed | undefined;
    let land!: (m: Landed) => void;
    const landed = new Promise<Landed>((resolve) => {
      land = (m) => {
        got = m;
        resolve(m);
      };
    });
    const waiter: Waiter = { key, record, community, call, ctx, land };
    const expiry = new AbortController();
    const timer = setTimeout(
      () =>
        expiry.abort(
          new CallFailure('timeout', `no asynchronous response within ${Math.round(timeoutMs)} ms`),
        ),
      timeoutMs,
    );
    const signal = AbortSignal.any([ctx.signal, expiry.signal]);
    // Removed when the call ends: the listener's closure holds the landed response (its parsed
    // envelope), and a composite signal lives as long as its longest-lived source.
    let fail = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      fail = () =>
        reject(
          signal.reason instanceof CallFailure
            ? signal.reason
            : new CallFailure('aborted', 'request cancelled'),
        );
      if (signal.aborted) fail();
      else signal.addEventListener('abort', fail, { once: true });
    });
    aborted.catch(() => undefined);
    this.waiters.set(key, waiter);
    let outcome: ClaimState = 'expired';
    try {
      try {
        await this.d.store.putPending(key, record, ttl());
      } catch (e) {
        throw new CallFailure(
          'refused',
          `asynchronous exchange unavailable (correlation store: ${(e as Error).message})`,
        );
      }
      const sent = this.send(call, ctx, req, signal, timeoutMs);
      sent.catch(() => undefined);
      const first = await Promise.race([landed, sent, aborted]);
      const msg = first === 'accepted' ? await Promise.race([landed, aborted]) : first;
      outcome = 'answered';
      return checkLanded(call, ctx, msg);
    } catch (e) {
      if (ctx.signal.aborted) outcome = 'cancelled';
      if (got && outcome !== 'answered') void got.attachments.discard();
      throw e;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', fail);
      if (this.waiters.get(key) === waiter) this.waiters.delete(key);
      if (outcome !== 'answered') void this.d.store.claim(key, outcome, ttl()).catch(() => undefined);
      void this.d.store.dropPending(key).catch(() => undefined);
    }
  }

  /** Sends the request with our ReplyTo; 'accepted' on 202, or the answer when the peer replied at once. */
  private async send(
    call: Call<unknown>,
    ctx: Ctx,
    req: OutgoingRequest,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<Landed | 'accepted'> {
    const out = await encodeSubRequest(call, ctx, req.messageId, this.d.replyTo());
    const res = await this.d.gateway.outbound.post({
      endpoint: call.target.endpoint,
      contentType: out.contentType,
      body: out.body,
      signal,
      headersTimeoutMs: timeoutMs + 1000,
    });
    const ct = res.contentType;
    if (res.status === 202 || ((res.status === 200 || res.status === 204) && !ct)) {
      res.body.resume();
      return 'accepted';
    }
    if (!ct) {
      res.body.resume();
      throw new CallFailure('http-status', `HTTP ${res.status} to an asynchronous request`);
    }
    const limits = responseXmlLimits(ctx, call);
    const msg = await readSoapMessage(res.body, ct, {
      maxRootBytes: limits.maxBytes ?? call.target.endpoint.maxResponseBytes,
      maxPartHeaderBytes: 16 * 1024,
      maxParts: 100_000,
      maxTotalBytes: call.target.endpoint.maxResponseBytes,
    }).catch((e: unknown) => {
      res.body.destroy();
      throw res.status === 200
        ? e
        : new CallFailure('http-status', `HTTP ${res.status} without a SOAP answer`);
    });
    let envelope: SoapEnvelope;
    try {
      envelope = decodeEnvelope(msg.envelope, limits, false);
    } catch (e) {
      void msg.attachments.discard();
      throw new CallFailure(
        'bad-response',
        `answer is not a usable SOAP 1.2 envelope: ${(e as Error).message}`,
      );
    }
    if (res.status !== 200 && !envelope.payload.is(NS.soap, 'Fault')) {
      void msg.attachments.discard();
      throw new CallFailure('http-status', `HTTP ${res.status}`);
    }
    if (
      res.status === 200 &&
      envelope.wsa.relatesTo !== undefined &&
      envelope.wsa.relatesTo !== req.messageId
    ) {
      void msg.attachments.discard();
      throw new CallFailure('bad-response', 'wsa:RelatesTo does not match the request MessageID');
    }
    // A peer that ignores ReplyTo and answers on the connection still gives a usable answer.
    return { envelope, attachments: msg.attachments };
  }

  /** Writes every local pending record again (after Redis came back empty). */
  private async restore(): Promise<void> {
    for (const w of this.waiters.values()) {
      const ttl = w.record.deadline - Date.now() + this.d.graceMs;
      if (ttl > 0) await this.d.store.putPending(w.key, w.record, ttl).catch(() => undefined);
    }
    if (this.waiters.size)
      this.d.log.info('pending async requests restored in the correlation store', {
        count: this.waiters.size,
      });
  }
}

function checkLanded(call: Call<unknown>, ctx: Ctx, m: Landed): SubResponse {
  if (m.envelope.payload.is(NS.soap, 'Fault')) {
    void m.attachments.discard();
    throw new CallFailure('fault', `SOAP fault: ${faultReason(m.envelope)}`);
  }
  // The receiver refuses any other action before landing (receiver.ts `identify`); kept as a guard.
  if (m.envelope.wsa.action !== call.responseAction) {
    void m.attachments.discard();
    ctx.log.warn('unexpected response action', { target: call.target.label, action: m.envelope.wsa.action });
    throw new CallFailure(
      'bad-response',
      `response action ${m.envelope.wsa.action} is not ${call.responseAction}`,
    );
  }
  return m;
}
