import type { AuditParticipant, EventOutcome, TransactionAuditEvent } from '../audit/event';
import { inboundParticipants, outboundParticipants, outcomeOf } from './audit-support';
import { ErrorCode } from '../ebrim/error-codes';
import {
  decodeAdhocQueryRequest,
  decodeAdhocQueryResponse,
  encodeAdhocQueryResponse,
  type AdhocQueryRequest,
  type AdhocQueryResponse,
} from '../ebrim/query';
import {
  consolidatedStatus,
  registryError,
  registryWarning,
  type RegistryError,
  type Status,
} from '../ebrim/status';
import { queryPatientId, validateStoredQuery } from '../ebrim/stored-query';
import type { CallFailure } from '../outbound/client';
import type { Call, Ctx, Delivery, Outcome, Reply, Target } from '../pipeline/transaction';
import { relayElement } from '../xml/write';
import { withReleaseNote } from '../disclosure/notes';
import { Action } from './actions';
import { communityOf } from './error-location';

/** The merged answer of a query transaction. */
export interface QueryResult {
  status: Status;
  errors: RegistryError[];
  /** Registry objects, serialised (relayed byte-exact apart from the start tag). */
  objects: string[];
  /** Each sub-request and how it went, for audit (the requester-side records) and metrics. */
  subRequests: SubRequestResult[];
}

export interface SubRequestResult {
  target: Target;
  kind: QueryKind;
  requestXml: string;
  ok: boolean;
  status?: Status;
}

export type QueryKind = 'ITI-18' | 'ITI-38';

export function decodeQuery(ctx: Ctx): AdhocQueryRequest {
  return decodeAdhocQueryRequest(ctx.envelope.doc, ctx.envelope.payload);
}

/** Rules common to ITI-18 and ITI-38: a known stored query with well-formed, complete parameters. */
export function validateQuery(req: AdhocQueryRequest): RegistryError[] {
  if (!req.query) {
    return [
      registryError(
        ErrorCode.UnknownStoredQuery,
        `stored query ${req.queryId || '(none)'} is not known`,
        req.queryId,
      ),
    ];
  }
  // A parameter whose value could not be read was reported already; it is not also "missing".
  const unreadable = new Set(req.errors.map((e) => e.location));
  return [...req.errors, ...validateStoredQuery(req.query, req.params, unreadable)];
}

/** A query sub-request (ITI-18 to a registry, ITI-38 to a Responding Gateway). */
export function queryCall(
  target: Target,
  kind: QueryKind,
  body: string,
  failed: (why: CallFailure) => RegistryError[],
  opts: { relayOnly?: boolean } = {},
): Call<AdhocQueryResponse> {
  return {
    target,
    // Relaying needs the registry objects but not their insides: Envelope/Body/AdhocQueryResponse/
    // RegistryObjectList/object is level 5.
    responseTreeDepth: opts.relayOnly ? 5 : undefined,
    action: kind === 'ITI-18' ? Action.ITI18 : Action.ITI38,
    responseAction: kind === 'ITI-18' ? Action.ITI18Response : Action.ITI38Response,
    body,
    mtom: false,
    read: async (res) => decodeAdhocQueryResponse(res.envelope.doc, res.envelope.payload),
    failed,
  };
}

/** A community that could not be asked or did not answer; codeContext names it (ITI TF-2 3.18.4.1.3). */
export function unavailableCommunity(home: string, why: CallFailure): RegistryError[] {
  return [
    registryError(
      ErrorCode.UnavailableCommunity,
      `community ${home} did not answer: ${why.message}`,
      undefined,
      { community: home },
    ),
  ];
}

/** How objects from one target get their `home`. */
export type HomeStamp =
  /** Set (or replace) home on every top-level object: answers from our own registry. */
  | { mode: 'set'; home: string }
  /** Keep the home a remote community put; fill it in where missing and say so. */
  | { mode: 'fill'; home: string; community: string };

/**
 * Consolidates query answers: objects concatenated with their `home`, errors kept with the community
 * they came from (located by the transaction), failed targets as errors. Status: Success without errors; Failure when no target answered with
 * Success or PartialSuccess; PartialSuccess otherwise (see README, "Status of a consolidated query").
 */
export function mergeQueryAnswers(
  outcomes: Outcome<AdhocQueryResponse>[],
  planErrors: RegistryError[],
  stampFor: (target: Target) => HomeStamp,
): QueryResult {
  const errors = [...planErrors];
  const objects: string[] = [];
  const subRequests: SubRequestResult[] = [];
  for (const o of outcomes) {
    const kind: QueryKind = o.call.action === Action.ITI38 ? 'ITI-38' : 'ITI-18';
    if (!o.ok) {
      errors.push(...o.errors);
      subRequests.push({ target: o.call.target, kind, requestXml: o.call.body, ok: false });
      continue;
    }
    const ans = o.value;
    subRequests.push({ target: o.call.target, kind, requestXml: o.call.body, ok: true, status: ans.status });
    for (const e of ans.errors) errors.push({ ...e, community: communityOf(o.call.target) });
    const stamp = stampFor(o.call.target);
    const missing: string[] = [];
    const foreign: string[] = [];
    for (const obj of ans.objects) {
      const home = obj.attr('home');
      if (stamp.mode === 'set') {
        objects.push(relayElement(ans.doc, obj, { setAttributes: { home: stamp.home } }));
      } else if (home === stamp.home) {
        objects.push(relayElement(ans.doc, obj));
      } else if (home) {
        foreign.push(`${obj.attr('id') ?? obj.local} (home="${home.slice(0, 80)}")`);
      } else {
        missing.push(obj.attr('id') ?? obj.local);
        objects.push(relayElement(ans.doc, obj, { setAttributes: { home: stamp.home } }));
      }
    }
    // A home other than the community asked would send the consumer's later retrieves to another
    // community (or claim its documents): such objects are withheld and named, never relayed (R37).
    if (stamp.mode === 'fill' && foreign.length > 0) {
      errors.push(
        registryError(
          ErrorCode.RegistryMetadataError,
          `Responding Gateway of ${stamp.community} returned ${foreign.length} object(s) whose home is not ${stamp.home}, ` +
            `the community asked (first: ${foreign[0]}); they were withheld`,
          undefined,
          { community: stamp.home },
        ),
      );
    }
    if (stamp.mode === 'fill' && missing.length > 0) {
      errors.push(
        registryWarning(
          ErrorCode.RegistryMetadataError,
          `Responding Gateway of ${stamp.community} returned ${missing.length} object(s) without the required home attribute ` +
            `(first: ${missing[0]}); home was set to ${stamp.home}, the community asked`,
          undefined,
          { community: stamp.home },
        ),
      );
    }
  }
  const answered = subRequests.some((r) => r.ok && r.status !== 'Failure');
  return { status: consolidatedStatus(errors, answered), errors, objects, subRequests };
}

export function encodeQueryResult(res: QueryResult): Reply {
  return { kind: 'xml', payload: encodeAdhocQueryResponse(res.status, res.errors, res.objects) };
}

/** An audit event for one end of an ITI-18 / ITI-38 exchange. */
export function queryAuditEvent(o: {
  kind: QueryKind;
  side: 'requester' | 'responder';
  req: AdhocQueryRequest;
  /** The AdhocQueryRequest as sent on this exchange. */
  requestXml: string;
  home?: string;
  outcome: EventOutcome;
  description?: string;
  participants: { requester: AuditParticipant; responder: AuditParticipant };
  ctx: Ctx;
}): TransactionAuditEvent {
  const patient = o.req.query ? queryPatientId(o.req.query, o.req.params) : undefined;
  return {
    kind: 'transaction',
    transaction: o.kind,
    side: o.side,
    eventDateTime: new Date(),
    ...o.participants,
    humanRequestors: o.ctx.humanRequestors,
    purposesOfUse: o.ctx.purposesOfUse,
    patientIds: patient ? [patient] : [],
    query: { storedQueryId: o.req.queryId, requestXml: Buffer.from(o.requestXml), homeCommunityId: o.home },
    outcome: o.outcome,
    outcomeDescription: o.description,
    groups: [],
    messageId: o.ctx.envelope.wsa.messageId,
  };
}

/**
 * The records a query transaction writes: one for the exchange we served, one per sub-request we
 * sent (ITI-18 to our registry, ITI-38 to each community).
 */
export function queryAuditEvents(
  served: QueryKind,
  req: AdhocQueryRequest,
  res: QueryResult | undefined,
  ctx: Ctx,
  delivery: Delivery,
): TransactionAuditEvent[] {
  const servedEvent = withReleaseNote(
    queryAuditEvent({
      kind: served,
      side: 'responder',
      req,
      requestXml: relayElement(req.doc, req.element),
      home: req.home,
      outcome: outcomeOf(res?.status, delivery),
      description: res?.errors.length ? res.errors.map((e) => e.errorCode).join(' ') : undefined,
      participants: inboundParticipants(ctx),
      ctx,
    }),
    ctx,
  );
  // For the audit writer only (never in the record): links patient ↔ documents for later retrieves.
  if (res?.objects.length) servedEvent.resultObjects = res.objects;
  const events = [servedEvent];
  for (const sr of res?.subRequests ?? []) {
    events.push(
      queryAuditEvent({
        kind: sr.kind,
        side: 'requester',
        req,
        requestXml: sr.requestXml,
        home: sr.kind === 'ITI-38' ? sr.target.location : req.home,
        outcome: sr.ok ? outcomeOf(sr.status) : 8,
        description: sr.ok ? undefined : `${sr.target.label} did not answer`,
        participants: outboundParticipants(sr.target),
        ctx,
      }),
    );
  }
  return events;
}
