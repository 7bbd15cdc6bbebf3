import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { quietly } from '../util/quietly';
import type { HumanRequestor, PurposeOfUse, TransactionAuditEvent } from '../audit/event';
import { auditRefusal } from '../audit/gateway';
import { BodyTooLargeError } from '../inbound/body';
import { MtomError } from '../mtom/errors';
import { readSoapMessage } from '../mtom/read';
import { MtomWriter } from '../mtom/writer';
import { parseXml } from '../xml/parse';
import {
  decodeEnvelope,
  encodeEnvelope,
  securityHeaderWithAssertions,
  type SoapEnvelope,
} from '../soap/envelope';
import { encodeFault, SoapFault } from '../soap/fault';
import { isAnonymous, WSA_ANONYMOUS } from '../soap/ids';
import { Deadline } from '../util/deadline';
import { dispatch, type CallHooks } from './dispatch';
import type { Caller, Ctx, Delivery, Gateway, Reply, Transaction } from './transaction';
import type { AttachmentStream } from '../mtom/types';

/** Extension points for the stages that later features add (security, async, metrics). */
export interface EngineHooks extends CallHooks {
  /**
   * Authenticates and authorises the caller for this transaction (mTLS identity → community,
   * XUA). Throws SoapFault to refuse. Returns the human requestors and the headers to forward.
   */
  admit?(tx: AnyTransaction, envelope: SoapEnvelope, caller: Caller): Promise<Admission> | Admission;
  /**
   * Takes over a request that asked for an asynchronous reply (non-anonymous wsa:ReplyTo):
   * answers 202 and later sends the reply itself. Absent → such requests are refused.
   */
  served?(run: ServedRun): Promise<void>;
  /** Observes every finished transaction. */
  finished?(tx: AnyTransaction, outcome: Finished): void;
  /**
   * Wraps the whole handling of one inbound request (tracing: the server span and its context;
   * metrics: in-flight requests, bytes). Must call `run` once and resolve when it does.
   */
  around?(tx: AnyTransaction, inbound: Inbound, run: () => Promise<void>): Promise<void>;
}

/** The inbound HTTP exchange an `around` hook wraps. */
export interface Inbound {
  req: IncomingMessage;
  res: ServerResponse;
  caller: Caller;
}

export interface Finished {
  caller: Caller;
  ms: number;
  fault?: SoapFault;
  delivery?: Delivery;
}

export interface Admission {
  humanRequestors: HumanRequestor[];
  /** PurposeOfUse codes of the validated XUA assertion. */
  purposesOfUse?: PurposeOfUse[];
  /** Headers relayed on sub-requests (the requester's XUA assertion as received). */
  forwardHeaders?: string;
}

// The engine handles transactions of any request/sub-answer/response types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTransaction = Transaction<any, any, any>;

/** What the async-served hook receives: everything needed to run the pipeline later. */
export interface ServedRun {
  tx: AnyTransaction;
  ctx: Ctx;
  httpRes: ServerResponse;
  /** Runs the pipeline and returns the reply (the hook writes it to ReplyTo). */
  execute(signal: AbortSignal): Promise<Executed>;
}

export interface Executed {
  reply: Reply;
  /** Call once the reply was delivered (or failed) to write the audit records. */
  audited(delivery: Delivery): void;
}

export interface InboundOptions {
  gateway: Gateway;
  endpointUrl: string;
  caller: Caller;
  hooks?: EngineHooks;
}

const SOAP_XML = 'application/soap+xml; charset=UTF-8';

/** Handles one inbound SOAP request for `tx` end to end. Never throws. */
export async function handleInbound(
  tx: AnyTransaction,
  httpReq: IncomingMessage,
  httpRes: ServerResponse,
  o: InboundOptions,
): Promise<void> {
  const around = o.hooks?.around;
  if (!around) return handleInboundNow(tx, httpReq, httpRes, o);
  await around(tx, { req: httpReq, res: httpRes, caller: o.caller }, () =>
    handleInboundNow(tx, httpReq, httpRes, o),
  ).catch((e: unknown) => {
    o.gateway.log.error('request wrapper failed', { tx: tx.name, error: e as Error });
    if (!httpRes.headersSent)
      sendFault(httpRes, SoapFault.receiver('the gateway could not process the request'));
  });
}

async function handleInboundNow(
  tx: AnyTransaction,
  httpReq: IncomingMessage,
  httpRes: ServerResponse,
  o: InboundOptions,
): Promise<void> {
  const t0 = Date.now();
  const gw = o.gateway;
  const hooks = o.hooks ?? {};
  const log = gw.log.child({ tx: tx.name });
  const abort = new AbortController();
  httpRes.on('close', () => {
    if (!httpRes.writableFinished) abort.abort(new Error('requester disconnected'));
  });

  let envelope: SoapEnvelope | undefined;
  let attachments: AttachmentStream | undefined;
  let ctx: Ctx;
  try {
    const msg = await readSoapMessage(httpReq, httpReq.headers['content-type'], {
      maxRootBytes: Math.min(gw.limits.maxRequestBytes, o.caller.maxRequestBytes ?? Infinity),
      maxPartHeaderBytes: 16 * 1024,
      maxParts: 16,
      maxTotalBytes: Math.min(gw.limits.maxRequestBytes, o.caller.maxRequestBytes ?? Infinity) * 2,
    });
    attachments = msg.attachments;
    envelope = decodeEnvelope(msg.envelope, gw.limits.xml, true);
    if (envelope.wsa.action !== tx.requestAction) {
      throw SoapFault.sender(
        `action ${envelope.wsa.action} is not served at this endpoint (expected ${tx.requestAction})`,
        'ActionNotSupported',
      );
    }
    // Retrieve and query requests carry no binary parts; anything attached is read and dropped
    // (bounded above). Submissions (ITI-41 / RAD-68) read theirs in `merge`.
    if (!tx.readsAttachments) await msg.attachments.discard();
    // Fail closed: no transaction runs while its audit record cannot be written (spool full/unwritable).
    const auditDown = auditRefusal(gw.audit);
    if (auditDown) throw auditDown;
    const admission = (await hooks.admit?.(tx, envelope, o.caller)) ?? {
      humanRequestors: [],
      forwardHeaders: securityHeaderWithAssertions(envelope),
    };
    ctx = {
      gateway: gw,
      envelope,
      attachments: msg.attachments,
      caller: o.caller,
      endpointUrl: o.endpointUrl,
      deadline: Deadline.in(gw.directory.deadlineMs),
      signal: abort.signal,
      log: log.child({ messageId: envelope.wsa.messageId }),
      forwardHeaders: admission.forwardHeaders,
      humanRequestors: admission.humanRequestors,
      purposesOfUse: admission.purposesOfUse ?? [],
    };
  } catch (e) {
    quietly(attachments?.discard());
    const fault = asFault(e);
    const fields = { fault: fault.reason, code: fault.code };
    if (fault.senderFault) log.warn('request refused', fields);
    else log.error('request refused', fields);
    sendFault(httpRes, fault, envelope?.wsa.messageId);
    recordEarlyFailure(tx, gw, o, envelope, fault);
    hooks.finished?.(tx, { caller: o.caller, ms: Date.now() - t0, fault });
    return;
  }

  const runCtx = ctx;
  if (!isAnonymous(envelope.wsa.replyTo)) {
    if (!hooks.served) {
      const fault = SoapFault.sender(
        'the asynchronous exchange is not available at this endpoint',
        'DestinationUnreachable',
      );
      sendFault(httpRes, fault, envelope.wsa.messageId);
      recordEarlyFailure(tx, gw, o, envelope, fault);
      return;
    }
    await hooks.served({
      tx,
      ctx: runCtx,
      httpRes,
      execute: (signal) => execute(tx, { ...runCtx, signal }, hooks),
    });
    return;
  }

  try {
    const { reply, audited } = await execute(tx, runCtx, hooks);
    const delivery = await sendReply(httpRes, tx, runCtx, reply);
    audited(delivery);
    hooks.finished?.(tx, { caller: o.caller, ms: Date.now() - t0, delivery });
    if (!delivery.ok) runCtx.log.warn('reply not delivered', { reason: delivery.error?.message });
  } catch (e) {
    const fault =
      e instanceof SoapFault ? e : SoapFault.receiver('the gateway could not process the request');
    if (fault.senderFault) runCtx.log.warn('request refused', { fault: fault.reason, code: fault.code });
    else runCtx.log.error('transaction failed', { error: e as Error });
    if (!httpRes.headersSent) sendFault(httpRes, fault, envelope.wsa.messageId);
    else httpRes.destroy();
    recordEarlyFailure(tx, gw, o, envelope, fault);
    hooks.finished?.(tx, { caller: o.caller, ms: Date.now() - t0, fault });
  }
}

/** decode → validate → plan → dispatch → merge → encode. Audit is deferred until delivery. */
export async function execute(tx: AnyTransaction, outer: Ctx, hooks: CallHooks = {}): Promise<Executed> {
  // Stages that must exchange before they can plan (XCPD ahead of ITI-38) dispatch with the same hooks.
  const ctx: Ctx = { ...outer, dispatch: (calls) => dispatch(calls, ctx, hooks) };
  const req = tx.decode(ctx);
  if (tx.releasesRequestTree) releaseRequestTree(ctx.envelope);
  const invalid = tx.validate(req, ctx);
  const plan = invalid.length > 0 ? { calls: [], errors: invalid } : await tx.plan(req, ctx);
  const outcomes = await dispatch(plan.calls, ctx, hooks);
  const res = await tx.merge(req, outcomes, plan.errors, ctx).finally(() => {
    if (tx.readsAttachments) quietly(ctx.attachments.discard());
  });
  const reply = tx.encode(res, ctx);
  return {
    reply,
    audited: (delivery) => {
      for (const ev of tx.audit(req, res, ctx, delivery)) ctx.gateway.audit.record(ev);
    },
  };
}

const RELEASED = parseXml('<released/>');

/** Replaces the envelope's XML tree by an empty element; `wsa` (all later stages read) stays. */
function releaseRequestTree(envelope: SoapEnvelope): void {
  envelope.doc = RELEASED;
  envelope.payload = RELEASED.root;
  envelope.header = undefined;
  envelope.security = undefined;
}

/** Writes a reply on the synchronous HTTP response. */
export async function sendReply(
  httpRes: ServerResponse,
  tx: AnyTransaction,
  ctx: Ctx,
  reply: Reply,
): Promise<Delivery> {
  const envelope = (): string =>
    encodeEnvelope({
      action: tx.responseAction,
      relatesTo: ctx.envelope.wsa.messageId,
      body: reply.payload,
      request: false,
    });
  if (reply.kind === 'xml') {
    const xml = envelope();
    httpRes.writeHead(200, { 'content-type': `${SOAP_XML}; action="${tx.responseAction}"` });
    await new Promise<void>((resolve) => httpRes.end(xml, () => resolve()));
    return { ok: true };
  }
  // The root leaves once, as bytes: its text (for a large retrieve megabytes of concatenated
  // pieces) is not kept while the parts stream — nor named in this scope, whose closures live as
  // long as the reply.
  const root = Buffer.from(envelope(), 'utf8');
  reply.payload = '';
  return writeMtomReply(httpRes, root, reply.parts, tx.responseAction, (ct) =>
    httpRes.writeHead(200, { 'content-type': ct }),
  );
}

/** Streams an MTOM reply into `out`; on a part failure the output is destroyed (never left looking complete). */
export async function writeMtomReply(
  out: NodeJS.WritableStream & { destroy(error?: Error): void },
  envelope: string | Buffer,
  parts: AsyncIterable<{ contentId: string; contentType: string; body: NodeJS.ReadableStream }>,
  action: string,
  start: (contentType: string) => void,
): Promise<Delivery> {
  const w = new MtomWriter(out as never, { action });
  start(w.contentType);
  try {
    await w.writeRoot(envelope);
    envelope = ''; // sent: not held while the parts stream
    for await (const p of parts) await w.writePart(p.contentId, p.contentType, p.body as never);
    await w.end();
    await new Promise<void>((resolve) => out.end(() => resolve()));
    return { ok: true };
  } catch (e) {
    // Cut the package short, but only after what was already written (whole parts) has left:
    // the requester keeps the documents before the break and sees no closing boundary.
    await drained(out as unknown as Writable, 5_000);
    out.destroy(e as Error);
    return { ok: false, error: e as Error };
  }
}

function drained(out: Writable, ms: number): Promise<void> {
  if (out.destroyed || out.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    out.once('drain', done);
    out.once('close', done);
  });
}

export function asFault(e: unknown): SoapFault {
  if (e instanceof SoapFault) return e;
  if (e instanceof BodyTooLargeError) return new SoapFault('Sender', `request too large: ${e.message}`);
  if (e instanceof MtomError) {
    if (e.code === 'too-large') return new SoapFault('Sender', `request too large: ${e.message}`);
    return SoapFault.sender(`request not readable: ${e.message}`);
  }
  return SoapFault.sender(`request not readable: ${(e as Error)?.message ?? String(e)}`);
}

export function sendFault(httpRes: ServerResponse, fault: SoapFault, relatesTo?: string): void {
  if (httpRes.headersSent || httpRes.destroyed) return;
  const body = encodeFault(fault, relatesTo);
  httpRes.writeHead(fault.httpStatus, { 'content-type': SOAP_XML, connection: 'close' });
  httpRes.end(body);
}

/** An audit record for a request refused before its transaction module could read it. */
export function recordEarlyFailure(
  tx: AnyTransaction,
  gw: Gateway,
  o: Pick<InboundOptions, 'caller' | 'endpointUrl'>,
  env: SoapEnvelope | undefined,
  fault: SoapFault,
): void {
  const ev: TransactionAuditEvent = {
    kind: 'transaction',
    transaction: tx.name,
    side: 'responder',
    eventDateTime: new Date(),
    requester: {
      userId: env?.wsa.replyTo ?? WSA_ANONYMOUS,
      networkAccessPointId: o.caller.remoteAddress,
      certificateSubject: o.caller.certificate?.subject,
    },
    responder: { userId: o.endpointUrl },
    humanRequestors: [],
    patientIds: [],
    outcome: fault.code === 'Receiver' ? 12 : 8,
    outcomeDescription: `${fault.code}: ${fault.reason}`.slice(0, 500),
    groups: [],
    messageId: env?.wsa.messageId,
  };
  gw.audit.record(ev);
}
