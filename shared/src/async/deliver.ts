import { PassThrough, Readable } from 'node:stream';
import type { PeerIdentity } from '../directory/types';
import { CallFailure, type Outbound } from '../outbound/client';
import { MtomWriter } from '../mtom/writer';
import type { Delivery, OutgoingPart } from '../pipeline/transaction';
import type { Logger } from '../util/log';

/** A message to POST to a ReplyTo / FaultTo address. */
export type OutgoingMessage =
  { kind: 'xml'; xml: string } | { kind: 'mtom'; envelope: string; parts: AsyncIterable<OutgoingPart> };

export interface DeliverOptions {
  outbound: Outbound;
  /** Normalised address the directory allows for the requester (see reply-to.ts). */
  url: string;
  action: string;
  message: OutgoingMessage;
  /** Attempts stop once this much time has passed since the first. */
  windowMs: number;
  /** Longest wait for the receiver's HTTP answer in one attempt. */
  attemptTimeoutMs: number;
  signal: AbortSignal;
  log: Logger;
  /** The requester's identity: the ReplyTo server must prove it (TLS, security/peer-tls.ts). */
  peerIdentity?: PeerIdentity;
}

const SOAP_XML = 'application/soap+xml; charset=UTF-8';

/**
 * POSTs a response to a ReplyTo address, retrying with exponential backoff (capped, jittered) for
 * `windowMs`. Any 2xx is delivery. A 4xx other than 408/429 is final: the receiver refuses it.
 * An MTOM body streams from the reply's parts, so it can be retried only while nothing of it was
 * sent (the transport reads the body only after it connected, so refused connections do retry).
 */
export async function deliver(o: DeliverOptions): Promise<Delivery> {
  const until = Date.now() + o.windowMs;
  const endpoint = {
    url: o.url,
    timeoutMs: o.attemptTimeoutMs,
    maxConcurrent: 32,
    maxResponseBytes: 1024 * 1024,
  };
  let attempt = 0;
  let lastError: Error = new Error('not attempted');
  let mtomStarted = false;
  for (;;) {
    attempt++;
    const body =
      o.message.kind === 'xml' ? undefined : lazyMtomBody(o.message.envelope, o.message.parts, o.action);
    const permanent = await (async (): Promise<boolean | 'ok'> => {
      const attemptSignal = AbortSignal.any([o.signal, AbortSignal.timeout(Math.max(1, o.attemptTimeoutMs))]);
      try {
        const res = await o.outbound.post({
          endpoint,
          contentType: body ? body.contentType : `${SOAP_XML}; action="${o.action}"`,
          body: body ? body.stream : Buffer.from((o.message as { xml: string }).xml, 'utf8'),
          signal: attemptSignal,
          headersTimeoutMs: o.attemptTimeoutMs,
          permit: (u) => u === o.url,
          peerIdentity: o.peerIdentity,
        });
        res.body.resume();
        if (res.status >= 200 && res.status < 300) {
          if (body) await body.done;
          return 'ok';
        }
        body?.stream.destroy();
        lastError = new CallFailure('http-status', `ReplyTo answered HTTP ${res.status}`);
        return res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
      } catch (e) {
        lastError = e as Error;
        return e instanceof CallFailure && e.kind === 'egress-denied';
      } finally {
        if (body?.started()) mtomStarted = true;
      }
    })();
    if (permanent === 'ok') {
      if (attempt > 1) o.log.info('async response delivered after retries', { attempts: attempt });
      return { ok: true };
    }
    const wait = backoff(attempt);
    if (permanent || mtomStarted || o.signal.aborted || Date.now() + wait > until) break;
    o.log.info('async response not delivered yet, retrying', {
      attempt,
      reason: lastError.message,
      inMs: wait,
    });
    await sleep(wait, o.signal);
  }
  if (o.message.kind === 'mtom' && !mtomStarted) await release(o.message.parts);
  return { ok: false, error: lastError };
}

function backoff(attempt: number): number {
  const base = Math.min(8_000, 250 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Lets go of a reply's parts that will never be sent (closes the producing generator). */
async function release(parts: AsyncIterable<OutgoingPart>): Promise<void> {
  try {
    await parts[Symbol.asyncIterator]().return?.();
  } catch {
    // nothing more to do
  }
}

interface LazyBody {
  contentType: string;
  stream: Readable;
  /** True once the transport began reading (the reply's parts are being consumed). */
  started(): boolean;
  /** Settles when the whole package was written (rejects when a part failed). */
  done: Promise<void>;
}

/** An MTOM package that is produced only when the transport starts reading it. */
export function lazyMtomBody(envelope: string, parts: AsyncIterable<OutgoingPart>, action: string): LazyBody {
  const pt = new PassThrough();
  pt.on('error', () => undefined); // reported through `done`
  const writer = new MtomWriter(pt, { action });
  let started = false;
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined);
  const produce = async () => {
    try {
      await writer.writeRoot(envelope);
      for await (const p of parts) await writer.writePart(p.contentId, p.contentType, p.body);
      await writer.end();
      pt.end();
      settle.resolve();
    } catch (e) {
      pt.destroy(e as Error);
      settle.reject(e as Error);
    }
  };
  const stream = new Readable({
    read() {
      if (started) {
        pt.resume();
        return;
      }
      started = true;
      pt.on('data', (c: Buffer) => {
        if (!stream.push(c)) pt.pause();
      });
      pt.once('end', () => stream.push(null));
      pt.once('error', (e) => stream.destroy(e));
      void produce();
    },
    destroy(err, cb) {
      if (!pt.destroyed) pt.destroy();
      if (!started) settle.reject(err ?? new Error('not sent'));
      cb(err);
    },
  });
  // Failures reach the caller through `done` and the transport; an unlistened 'error' would crash.
  stream.on('error', () => undefined);
  return { contentType: writer.contentType, stream, started: () => started, done };
}
