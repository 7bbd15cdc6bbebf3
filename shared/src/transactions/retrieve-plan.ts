import type {
  AuditedDocument,
  AuditedStudy,
  AuditedTransaction,
  TransactionAuditEvent,
} from '../audit/event';
import { ErrorCode } from '../ebrim/error-codes';
import { registryError, type RegistryError } from '../ebrim/status';
import type { Ctx, Delivery, Plan, Target } from '../pipeline/transaction';
import {
  imagingDocuments,
  type DocumentRequest,
  type ImagingDocumentRef,
  type ImagingRequest,
} from '../xds/retrieve';
import { inboundParticipants, outboundParticipants } from './audit-support';
import { withReleaseNote } from '../disclosure/notes';
import { communityOf } from './error-location';
import { chunk, retrieveCall, type RetrieveAnswer, type RetrieveCall, type RetrieveResult } from './retrieve';

/** Where one document goes: a target and how to build a sub-request for a group of documents. */
export interface Route<D extends DocumentRequest> {
  /** Documents with the same key go in the same sub-request(s). */
  key: string;
  target: Target;
  maxPerCall: number;
  action: string;
  responseAction: string;
  body(docs: D[]): string;
  /** The error for each document when the sub-request fails. */
  failed(doc: D, reason: string): RegistryError;
}

/**
 * Splits a retrieve into sub-requests: each document is routed (or refused with a RegistryError),
 * grouped by target, and chunked by the target's maximum documents per request. A target never
 * gets more sub-requests than its endpoint's maxConcurrent; documents beyond that are refused with
 * XDSRepositoryBusy (retry in smaller requests) rather than queued behind the fan-out's own streams.
 */
export function planRetrieve<D extends DocumentRequest>(
  docs: D[],
  route: (d: D) => Route<D> | RegistryError,
): Plan<RetrieveAnswer> {
  const errors: RegistryError[] = [];
  const groups = new Map<string, { route: Route<D>; docs: D[] }>();
  for (const d of docs) {
    const r = route(d);
    if ('errorCode' in r) {
      errors.push(r);
      continue;
    }
    const g = groups.get(r.key) ?? { route: r, docs: [] };
    g.docs.push(d);
    groups.set(r.key, g);
  }
  const calls: RetrieveCall[] = [];
  for (const { route: r, docs: group } of groups.values()) {
    const chunks = chunk(group, r.maxPerCall);
    const allowed = chunks.slice(0, r.target.endpoint.maxConcurrent);
    for (const c of chunks.slice(allowed.length)) {
      for (const d of c) {
        errors.push(
          registryError(
            ErrorCode.RepositoryBusy,
            `document ${d.documentUniqueId}: the request asks ${r.target.label} for more documents than one transaction may (` +
              `${r.maxPerCall} per request × ${r.target.endpoint.maxConcurrent} requests); retrieve it in a smaller request`,
            undefined,
            { document: d.documentUniqueId, community: communityOf(r.target) },
          ),
        );
      }
    }
    for (const c of allowed) {
      calls.push(
        retrieveCall({
          target: r.target,
          action: r.action,
          responseAction: r.responseAction,
          body: r.body(c),
          requested: c,
          failed: (why) => c.map((d) => r.failed(d, why.message)),
        }),
      );
    }
  }
  return { calls, errors };
}

/** A document whose home is not ours and not in the directory (or has no endpoint for this transaction). */
export function unknownCommunity(d: DocumentRequest, why = 'is not known to this gateway'): RegistryError {
  return registryError(
    ErrorCode.UnknownCommunity,
    `document ${d.documentUniqueId}: community ${d.homeCommunityId} ${why}`,
    undefined,
    { document: d.documentUniqueId, community: d.homeCommunityId },
  );
}

/** A document of our community whose RepositoryUniqueId names none of our repositories or sources. */
export function unknownRepository(d: DocumentRequest): RegistryError {
  return registryError(
    ErrorCode.UnknownRepositoryId,
    `document ${d.documentUniqueId}: repository ${d.repositoryUniqueId} is not known`,
    undefined,
    { document: d.documentUniqueId },
  );
}

export function documentUnavailable(d: DocumentRequest, home: string, reason: string): RegistryError {
  return registryError(
    ErrorCode.UnavailableCommunity,
    `document ${d.documentUniqueId}: community ${home} did not answer: ${reason}`,
    undefined,
    { document: d.documentUniqueId, community: home },
  );
}

/** A document that could not be delivered from `target` (not returned, failed a check, cut short). */
export function documentFailed(target: Target, d: DocumentRequest, reason: string): RegistryError {
  return registryError(ErrorCode.RepositoryError, `document ${d.documentUniqueId}: ${reason}`, undefined, {
    document: d.documentUniqueId,
    community: communityOf(target),
  });
}

export function missingHome(d: DocumentRequest): RegistryError {
  return registryError(
    ErrorCode.MissingHomeCommunityId,
    `document ${d.documentUniqueId}: HomeCommunityId is required`,
    undefined,
    { document: d.documentUniqueId },
  );
}

/**
 * Audit events of a retrieve: one for the transaction served (one record per outcome class is
 * made from `groups`), and one per sub-request sent. Failed documents = requested − delivered.
 */
export function retrieveAuditEvents(o: {
  served: AuditedTransaction;
  requested: DocumentRequest[];
  res: RetrieveResult | undefined;
  ctx: Ctx;
  delivery: Delivery;
  /** Which transaction a sub-request to this target is. */
  subTransaction(target: Target): AuditedTransaction;
  imaging: boolean;
}): TransactionAuditEvent[] {
  const delivered = new Set((o.res?.report.delivered ?? []).map((d) => docKey(d.requested)));
  const events: TransactionAuditEvent[] = [
    withReleaseNote(
      retrieveEvent(o.served, 'responder', o.requested, delivered, inboundParticipants(o.ctx), o),
      o.ctx,
    ),
  ];
  for (const sr of o.res?.subRequests ?? []) {
    events.push(
      retrieveEvent(
        o.subTransaction(sr.call.target),
        'requester',
        sr.call.requested,
        delivered,
        outboundParticipants(sr.call.target),
        o,
      ),
    );
  }
  return events;
}

/** The audit of RAD-69 served by an Imaging Document Source (no sub-requests to other IHE actors). */
export function imagingSourceAuditEvents(
  req: ImagingRequest,
  res: RetrieveResult | undefined,
  ctx: Ctx,
  delivery: Delivery,
): TransactionAuditEvent[] {
  return retrieveAuditEvents({
    served: 'RAD-69',
    requested: imagingDocuments(req),
    res,
    ctx,
    delivery,
    subTransaction: () => 'RAD-69',
    imaging: true,
  });
}

function retrieveEvent(
  transaction: AuditedTransaction,
  side: 'requester' | 'responder',
  requested: DocumentRequest[],
  delivered: Set<string>,
  participants: ReturnType<typeof inboundParticipants>,
  o: { ctx: Ctx; imaging: boolean; res: RetrieveResult | undefined },
): TransactionAuditEvent {
  const ok = requested.filter((d) => delivered.has(docKey(d)));
  const bad = requested.filter((d) => !delivered.has(docKey(d)));
  const group = (docs: DocumentRequest[], outcome: 0 | 8, description?: string) =>
    o.imaging
      ? { outcome, description, studies: studiesOf(docs as ImagingDocumentRef[]) }
      : { outcome, description, documents: docs.map(auditedDocument) };
  const groups = [
    ...(ok.length ? [group(ok, 0)] : []),
    ...(bad.length
      ? [group(bad, 8, o.res?.report.aborted ?? o.res?.errors.map((e) => e.errorCode).join(' '))]
      : []),
  ];
  return {
    kind: 'transaction',
    transaction,
    side,
    eventDateTime: new Date(),
    ...participants,
    humanRequestors: o.ctx.humanRequestors,
    purposesOfUse: o.ctx.purposesOfUse,
    patientIds: [],
    outcome: bad.length === 0 ? 0 : ok.length ? 4 : 8,
    groups,
    messageId: o.ctx.envelope.wsa.messageId,
  };
}

function docKey(d: DocumentRequest): string {
  return `${d.homeCommunityId ?? ''}|${d.repositoryUniqueId}|${d.documentUniqueId}`;
}

function auditedDocument(d: DocumentRequest): AuditedDocument {
  return {
    documentUniqueId: d.documentUniqueId,
    repositoryUniqueId: d.repositoryUniqueId,
    homeCommunityId: d.homeCommunityId,
  };
}

function studiesOf(docs: ImagingDocumentRef[]): AuditedStudy[] {
  const byKey = new Map<string, AuditedStudy>();
  const seriesOf = new Map<AuditedStudy, Map<string, AuditedStudy['series'][number]>>();
  for (const d of docs) {
    const key = `${d.studyInstanceUid}|${d.repositoryUniqueId}|${d.homeCommunityId ?? ''}`;
    let s = byKey.get(key);
    if (!s) {
      s = {
        studyInstanceUid: d.studyInstanceUid,
        series: [],
        repositoryUniqueId: d.repositoryUniqueId,
        homeCommunityId: d.homeCommunityId,
      };
      byKey.set(key, s);
    }
    let known = seriesOf.get(s);
    if (!known) seriesOf.set(s, (known = new Map()));
    let series = known.get(d.seriesInstanceUid);
    if (!series) {
      series = { seriesInstanceUid: d.seriesInstanceUid, sopInstanceUids: [] };
      s.series.push(series);
      known.set(d.seriesInstanceUid, series);
    }
    series.sopInstanceUids.push(d.documentUniqueId);
  }
  return [...byKey.values()];
}

/**
 * RAD-69/RAD-75 rules the schema cannot express (RAD TF-3 4.69.4.1.2): non-empty Study and Series
 * Instance UIDs, at least one document per series, a non-empty transfer syntax list.
 */
export function validateImagingRequest(req: ImagingRequest): RegistryError[] {
  const errors: RegistryError[] = [];
  if (req.studies.length === 0)
    errors.push(registryError(ErrorCode.RepositoryError, 'the request names no StudyRequest'));
  for (const s of req.studies) {
    if (!s.studyInstanceUid)
      errors.push(registryError(ErrorCode.RepositoryError, 'a StudyRequest has an empty studyInstanceUID'));
    if (s.series.length === 0)
      errors.push(registryError(ErrorCode.RepositoryError, `study ${s.studyInstanceUid}: no SeriesRequest`));
    for (const r of s.series) {
      if (!r.seriesInstanceUid) {
        errors.push(
          registryError(
            ErrorCode.RepositoryError,
            `study ${s.studyInstanceUid}: a SeriesRequest has an empty seriesInstanceUID`,
          ),
        );
      }
      if (r.documents.length === 0) {
        errors.push(
          registryError(ErrorCode.RepositoryError, `series ${r.seriesInstanceUid}: no DocumentRequest`),
        );
      }
    }
  }
  if (req.transferSyntaxUids.length === 0 || req.transferSyntaxUids.some((t) => !t)) {
    errors.push(
      registryError(
        ErrorCode.RepositoryError,
        'TransferSyntaxUIDList is empty or holds an empty TransferSyntaxUID',
      ),
    );
  }
  return errors;
}
