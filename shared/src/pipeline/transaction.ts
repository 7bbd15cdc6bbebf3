import type { Readable } from 'node:stream';
import type {
  AuditedTransaction,
  AuditSink,
  HumanRequestor,
  PurposeOfUse,
  TransactionAuditEvent,
} from '../audit/event';
import type { Directory, Endpoint, LocalConsumer, RemoteCommunity } from '../directory/types';
import type { RegistryError } from '../ebrim/status';
import type { CallFailure, Outbound } from '../outbound/client';
import type { AttachmentStream } from '../mtom/types';
import type { SoapEnvelope } from '../soap/envelope';
import type { Deadline } from '../util/deadline';
import type { Logger } from '../util/log';
import type { XmlLimits } from '../xml/parse';
import type { IntegrityStore } from '../integrity/store';
import type { Disclosure } from '../disclosure';
import type { CorrelationCache } from '../identity/cache';

/**
 * The pipeline every transaction runs (see README, "Architecture"):
 *
 *   decode → validate → plan → dispatch → merge → encode → audit
 *
 * The engine (engine.ts) owns the order, the I/O, deadlines, faults and the async exchange.
 * A transaction module supplies only the parts that differ: how its body reads, which profile
 * rules apply, how a request splits into sub-requests, how the answers merge, and what is audited.
 */
export interface Transaction<Req, Sub, Res> {
  readonly name: AuditedTransaction;
  readonly requestAction: string;
  readonly responseAction: string;
  /** The request's MTOM parts are the transaction's to read in `merge` (submissions); else dropped. */
  readonly readsAttachments?: boolean;
  /**
   * The request's XML tree is not needed once `decode` has run: the engine lets it go (the envelope
   * keeps its addressing), so a transaction of many documents does not hold its parsed request while
   * it streams (retrieves: a 20,000-instance request is a tree of megabytes).
   */
  releasesRequestTree?: boolean;
  /** Request model from the SOAP body. Envelope-level problems throw SoapFault. */
  decode(ctx: Ctx): Req;
  /** Profile rules the XSD cannot express that fail the whole request (→ Failure, no dispatch). */
  validate(req: Req, ctx: Ctx): RegistryError[];
  /**
   * Sub-requests, and errors for the parts that cannot be routed (unknown community, …). May first
   * exchange with other actors through `ctx.dispatch` (the Initiating Gateway's XCPD step), or wait
   * for a decision that must come before anything is fetched (what may leave the community).
   */
  plan(req: Req, ctx: Ctx): Plan<Sub> | Promise<Plan<Sub>>;
  /** One answer from the sub-answers; called with no outcomes when validation failed. */
  merge(req: Req, outcomes: Outcome<Sub>[], errors: RegistryError[], ctx: Ctx): Promise<Res>;
  /** The response payload (XML, or an MTOM root plus streamed parts). */
  encode(res: Res, ctx: Ctx): Reply;
  /** Audit events for this end of the transaction, once the reply was sent (or failed). */
  audit(req: Req, res: Res | undefined, ctx: Ctx, delivery: Delivery): TransactionAuditEvent[];
}

/** Who is calling: network address, TLS identity, and what the directory says it is. */
export interface Caller {
  remoteAddress: string;
  certificate?: { subject: string; names: string[]; fingerprint256: string };
  /** Responding side: the community the caller's certificate maps to. */
  community?: RemoteCommunity;
  /** Initiating side: the local consumer the caller's certificate maps to. */
  consumer?: LocalConsumer;
  /** This caller's request size limit, when lower than the gateway's (security/peer-limits.ts). */
  maxRequestBytes?: number;
}

/** Shared services of one gateway process. */
export interface Gateway {
  readonly role: 'initiating' | 'responding';
  readonly directory: Directory;
  readonly outbound: Outbound;
  readonly audit: AuditSink;
  readonly log: Logger;
  readonly limits: GatewayLimits;
  /** Base URL peers use to reach this gateway (async ReplyTo, WSDL addresses). */
  readonly publicUrl: string;
  /** Names of this gateway's own TLS certificate (replicas recognise each other by them). */
  readonly tlsIdentity?: readonly string[];
  /** Initiating side: hash/size announced in query results, for checking retrieves (M2). */
  readonly integrity?: IntegrityStore;
  /** Responding side: consent, break-glass and document-class policy (R9–R11), when configured. */
  readonly disclosure?: Disclosure;
  /** Initiating side: patient correlations learned with XCPD (ITI-55), shared by replicas via Redis. */
  readonly correlations?: CorrelationCache;
}

export interface GatewayLimits {
  /** Largest inbound request (root part for MTOM). */
  maxRequestBytes: number;
  /** XML limits for requests and for query responses from peers. */
  xml: XmlLimits;
  /** Largest SOAP root part of a retrieve response (inline base64 documents count here). */
  maxRetrieveRootBytes: number;
  /** Bytes of response parts the merger may hold to verify documents before committing its root. */
  lookaheadBytes: number;
}

/** Per-request context handed to every stage. */
export interface Ctx {
  readonly gateway: Gateway;
  readonly envelope: SoapEnvelope;
  /** Attachments of an MTOM request (requests carry none in these profiles; drained by the engine). */
  readonly attachments: AttachmentStream;
  readonly caller: Caller;
  /** The URL this request arrived at (the responder's UserID in audit). */
  readonly endpointUrl: string;
  readonly deadline: Deadline;
  /** Aborts when the requester goes away or the transaction is cancelled. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** wsse:Security with the requester's XUA assertion(s), relayed unchanged on every sub-request. */
  readonly forwardHeaders?: string;
  readonly humanRequestors: HumanRequestor[];
  /** PurposeOfUse codes of the validated XUA assertion (empty without one). */
  readonly purposesOfUse?: readonly PurposeOfUse[];
  /** Runs calls the way the pipeline's dispatch stage does (set by the engine for the stages). */
  readonly dispatch?: <S>(calls: Call<S>[]) => Promise<Outcome<S>[]>;
}

/** Where a sub-request goes. */
export interface Target {
  kind: 'community' | 'local';
  /** What errors name in `location`: a homeCommunityId, or a repositoryUniqueId. */
  location: string;
  /** For logs and metrics. */
  label: string;
  community?: RemoteCommunity;
  endpoint: Endpoint;
}

/** A message received in answer to a sub-request. */
export interface SubResponse {
  envelope: SoapEnvelope;
  attachments: AttachmentStream;
}

export interface Call<Sub> {
  target: Target;
  action: string;
  responseAction: string;
  /** The request payload (body element), serialised. */
  body: string;
  /** Send as MTOM (ITI-39/43 and RAD-69/75 requests are MTOM per IHE). */
  mtom: boolean;
  /** Keep only this many levels of the answer's XML tree (see XmlLimits.treeDepth). */
  responseTreeDepth?: number;
  /** Reads the answer. Streams inside it (attachments) may stay open for the merge to consume. */
  read(res: SubResponse, ctx: Ctx): Promise<Sub>;
  /** The RegistryErrors that stand for this call when it fails. */
  failed(why: CallFailure): RegistryError[];
}

export interface Plan<Sub> {
  calls: Call<Sub>[];
  errors: RegistryError[];
}

export type Outcome<Sub> =
  | { call: Call<Sub>; ok: true; value: Sub; ms: number }
  | { call: Call<Sub>; ok: false; failure: CallFailure; errors: RegistryError[]; ms: number };

export interface OutgoingPart {
  contentId: string;
  contentType: string;
  body: Readable;
}

export type Reply =
  | { kind: 'xml'; payload: string }
  | {
      kind: 'mtom';
      payload: string;
      /** Parts in the order they are written; an error here aborts the response. */
      parts: AsyncIterable<OutgoingPart>;
    };

/** How sending the reply went (streamed replies can fail after the root was committed). */
export interface Delivery {
  ok: boolean;
  error?: Error;
}
