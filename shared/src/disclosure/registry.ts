/**
 * The disclosure rules ask our own registry two things, with ordinary ITI-18 stored queries, each
 * audited as the ITI-18 it is (requester side):
 *  - the patient's Privacy Policy Acknowledgement documents (BPPC: FindDocuments by classCode);
 *  - the DocumentEntries of documents a retrieve asks for (GetDocuments by uniqueId): whose they
 *    are and what class, since ITI-39 / RAD-75 requests name no patient.
 */
import type { TransactionAuditEvent } from '../audit/event';
import { ErrorCode } from '../ebrim/error-codes';
import { APPROVED_STATUS, encodeAdhocQueryRequest, type AdhocQueryResponse } from '../ebrim/query';
import { quoteParam, StoredQuery } from '../ebrim/stored-query';
import { dispatch } from '../pipeline/dispatch';
import type { Ctx, Target } from '../pipeline/transaction';
import { outboundParticipants, outcomeOf } from '../transactions/audit-support';
import { queryCall } from '../transactions/query';
import { objectFacts, type ObjectFacts } from './entries';

/** The registry could not be asked (or answered with an error): nothing may be decided from it. */
export class LookupFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LookupFailed';
  }
}

/** Stored-query values per request, at least; larger lookups are split into parallel queries. */
const IDS_PER_QUERY = 200;

function registryTarget(ctx: Ctx, purpose: string): Target {
  const dir = ctx.gateway.directory;
  const registry = dir.local.registry;
  if (!registry) throw new LookupFailed('no registry is configured');
  return {
    kind: 'local',
    location: dir.homeCommunityId,
    label: `local registry (${purpose})`,
    endpoint: registry,
  };
}

/**
 * Runs ITI-18 queries against our registry; resolves with each answer. `unknownPatientIsEmpty`:
 * an XDSUnknownPatientId Failure counts as an empty answer.
 */
async function ask(
  ctx: Ctx,
  purpose: string,
  queries: { queryId: string; body: string; patientId?: string }[],
  unknownPatientIsEmpty = false,
): Promise<AdhocQueryResponse[]> {
  const target = registryTarget(ctx, purpose);
  const calls = queries.map((q) => queryCall(target, 'ITI-18', q.body, () => []));
  const outcomes = await dispatch(calls, ctx);
  const answers: AdhocQueryResponse[] = [];
  outcomes.forEach((o, i) => {
    const q = queries[i];
    ctx.gateway.audit.record(lookupEvent(ctx, target, q, o.ok ? outcomeOf(o.value.status) : 8));
    if (!o.ok) throw new LookupFailed(`the registry did not answer: ${o.failure.message}`);
    const a = o.value;
    const unknownPatient =
      a.errors.length > 0 && a.errors.every((e) => e.errorCode === ErrorCode.UnknownPatientId);
    if (a.status === 'Failure' && !(unknownPatientIsEmpty && unknownPatient))
      throw new LookupFailed(
        `the registry answered ${a.errors.map((e) => e.errorCode).join(' ') || 'Failure'}`,
      );
    answers.push(a);
  });
  return answers;
}

function lookupEvent(
  ctx: Ctx,
  target: Target,
  q: { queryId: string; body: string; patientId?: string },
  outcome: 0 | 4 | 8 | 12,
): TransactionAuditEvent {
  return {
    kind: 'transaction',
    transaction: 'ITI-18',
    side: 'requester',
    eventDateTime: new Date(),
    ...outboundParticipants(target),
    humanRequestors: ctx.humanRequestors,
    purposesOfUse: ctx.purposesOfUse,
    patientIds: q.patientId ? [q.patientId] : [],
    query: { storedQueryId: q.queryId, requestXml: Buffer.from(q.body) },
    outcome,
    groups: [],
    messageId: ctx.envelope.wsa.messageId,
  };
}

/** The patient's approved documents of the given classes (`code^^scheme` or `code`), as facts. */
export async function documentsOfClass(
  ctx: Ctx,
  patientId: string,
  classCodes: string[],
): Promise<ObjectFacts[]> {
  const body = encodeAdhocQueryRequest({
    queryId: StoredQuery.FindDocuments,
    params: {
      $XDSDocumentEntryPatientId: quoteParam(patientId),
      $XDSDocumentEntryStatus: `(${quoteParam(APPROVED_STATUS)})`,
      $XDSDocumentEntryClassCode: `(${classCodes.map(quoteParam).join(',')})`,
    },
  });
  const [a] = await ask(ctx, 'consent', [{ queryId: StoredQuery.FindDocuments, body, patientId }], true);
  return (a?.objects ?? []).map((o) => objectFacts(o)).filter((f) => f.kind === 'document');
}

/** The DocumentEntries with these uniqueIds, by uniqueId (documents the registry does not know are absent). */
export async function documentsByUniqueId(ctx: Ctx, uniqueIds: string[]): Promise<Map<string, ObjectFacts>> {
  const ids = [...new Set(uniqueIds)];
  const queries: { queryId: string; body: string }[] = [];
  // At most the registry endpoint's maxConcurrent queries, run at once.
  const per = Math.max(
    IDS_PER_QUERY,
    Math.ceil(ids.length / registryTarget(ctx, 'lookup').endpoint.maxConcurrent),
  );
  for (let i = 0; i < ids.length; i += per) {
    const body = encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      params: {
        $XDSDocumentEntryUniqueId: `(${ids
          .slice(i, i + per)
          .map(quoteParam)
          .join(',')})`,
      },
    });
    queries.push({ queryId: StoredQuery.GetDocuments, body });
  }
  const out = new Map<string, ObjectFacts>();
  if (queries.length === 0) return out;
  for (const a of await ask(ctx, 'document lookup', queries)) {
    for (const o of a.objects) {
      const f = objectFacts(o);
      if (f.kind === 'document' && f.uniqueId) out.set(f.uniqueId, f);
    }
  }
  return out;
}
