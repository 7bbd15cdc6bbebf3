/**
 * Which patient id to use in each community's Cross Gateway Query (RAD TF-1 29.3.2 b; ITI TF-2x
 * E.7): the XCPD Initiating Gateway, grouped with our Initiating Gateway.
 *
 * Per community, by its directory `patientIdentity`:
 *   shared — the consumer's id, unchanged;
 *   static — the correlation file (a patient not in it is not asked);
 *   xcpd   — a cached correlation, else: our Patient Demographics Supplier gives the patient's
 *            demographics (ITI-47, by id), then every community still unknown is asked at once
 *            (ITI-55) and each answer read (ITI TF-2 3.55.4.2.3): one match → its id (cached);
 *            no match → the community is not asked, without error (cached, shorter); candidates
 *            it cannot decide between, AnswerNotAvailable, or an id of another assigning
 *            authority than the community's → not asked, with a warning naming the community;
 *            no answer → XDSUnavailableCommunity.
 * A consumer that already sends an id of the community's own assigning authority is not second-guessed.
 */
import { ErrorCode } from '../ebrim/error-codes';
import { registryError, registryWarning, type RegistryError } from '../ebrim/status';
import type { RemoteCommunity } from '../directory/types';
import { PATIENT_IDENTITY_DEFAULTS } from '../directory/patient-identity';
import {
  homeOid,
  parsePatientCx,
  patientCx,
  patientIdToIi,
  iiToPatientId,
  type PatientId,
} from '../hl7v3/cx';
import type { Demographics } from '../hl7v3/model';
import { encodeQueryByParameter, type PatientQuery } from '../hl7v3/patient-query';
import {
  MORE_ATTRIBUTES_SYSTEM,
  XCPD_ERROR_SYSTEM,
  type DecodedPatientQueryAnswer,
  type PatientMatch,
} from '../hl7v3/patient-response';
import type { CallFailure } from '../outbound/client';
import type { Call, Ctx, Outcome, Target } from '../pipeline/transaction';
import { outboundParticipants } from '../transactions/audit-support';
import {
  answerOutcome,
  answerPatientIds,
  idsAsCx,
  newPatientQuery,
  ownDevice,
  patientQueryAuditEvent,
  patientQueryCall,
  type PatientQueryKind,
} from '../transactions/patient-discovery';
import { unavailableCommunity } from '../transactions/query';
import type { Correlation } from './cache';

export interface PatientIds {
  /** homeCommunityId → the patient id to send there. Communities not in it are not asked. */
  ids: Map<string, string>;
  errors: RegistryError[];
  /** Communities that said they do not know the patient (an answer, for the query status). */
  notKnown: Set<string>;
}

type Answer = DecodedPatientQueryAnswer;

function notAsked(c: RemoteCommunity, why: string): RegistryError {
  return registryWarning(
    ErrorCode.UnknownPatientId,
    `community ${c.homeCommunityId} was not asked: ${why}`,
    undefined,
    { community: c.homeCommunityId },
  );
}

/** The patient id for every community (see the module comment). */
export async function patientIdsFor(
  localId: string,
  communities: RemoteCommunity[],
  ctx: Ctx,
): Promise<PatientIds> {
  const out: PatientIds = { ids: new Map(), errors: [], notKnown: new Set() };
  const pending: RemoteCommunity[] = [];
  const local = parsePatientCx(localId);
  for (const c of communities) {
    const pi = c.patientIdentity;
    if (!pi || pi.mode === 'shared') out.ids.set(c.homeCommunityId, localId);
    else if (!local) out.errors.push(notAsked(c, 'the patient id is not a CX id (ID^^^&OID&ISO)'));
    else if (local.assigningAuthority === pi.assigningAuthority) out.ids.set(c.homeCommunityId, localId);
    else if (pi.mode === 'static') {
      const id = pi.correlations?.get(localId);
      if (id) out.ids.set(c.homeCommunityId, id);
      else out.notKnown.add(c.homeCommunityId);
    } else pending.push(c);
  }
  if (local && pending.length) await discover(local, pending, ctx, out);
  return out;
}

async function discover(local: PatientId, communities: RemoteCommunity[], ctx: Ctx, out: PatientIds) {
  const localId = patientCx(local);
  const settings = ctx.gateway.directory.patientIdentity ?? PATIENT_IDENTITY_DEFAULTS;
  const cache = ctx.gateway.correlations;
  const cached = cache
    ? await cache.lookup(
        localId,
        communities.map((c) => c.homeCommunityId),
      )
    : new Map<string, Correlation>();
  const misses: RemoteCommunity[] = [];
  for (const c of communities) {
    const hit = cached.get(c.homeCommunityId);
    if (hit?.kind === 'match') out.ids.set(c.homeCommunityId, hit.patientId);
    else if (hit?.kind === 'no-match') out.notKnown.add(c.homeCommunityId);
    else misses.push(c);
  }
  if (!misses.length) return;

  const person = await demographicsOf(local, ctx);
  if (!person.ok) {
    for (const c of misses) out.errors.push(person.error(c));
    return;
  }
  const calls = misses.map((c) => discoveryCall(person.ownId, person.demographics, c, ctx));
  const outcomes = await run(calls, ctx);
  const learned: { home: string; correlation: Correlation; ttlMs: number }[] = [];
  outcomes.forEach((o, i) => {
    const c = misses[i];
    const verdict = o.ok ? judge(o.value, c) : { errors: o.errors };
    // The id asked with, the id sent (ours, if the consumer used another), the ids answered (R38).
    const named = [localId, ...idsAsCx(calls[i].query.ids), ...answerPatientIds(o.ok ? o.value : undefined)];
    // Candidates we did not take are audited as named, but as a minor failure: never linked (report).
    const unused =
      !verdict.patientId && o.ok && o.value.matches.length
        ? (verdict.errors?.[0]?.codeContext ?? 'its candidates are not of this community')
        : undefined;
    audit(ctx, 'ITI-55', calls[i], o, named, unused);
    if (verdict.patientId) {
      out.ids.set(c.homeCommunityId, verdict.patientId);
      learned.push({
        home: c.homeCommunityId,
        correlation: { kind: 'match', patientId: verdict.patientId },
        ttlMs: settings.cacheTtlMs,
      });
    } else if (verdict.notKnown) {
      out.notKnown.add(c.homeCommunityId);
      if (settings.noMatchTtlMs > 0)
        learned.push({
          home: c.homeCommunityId,
          correlation: { kind: 'no-match' },
          ttlMs: settings.noMatchTtlMs,
        });
    }
    out.errors.push(...(verdict.errors ?? []));
  });
  await cache?.store(localId, learned);
}

/** Runs sub-requests with the pipeline's hooks (circuit breaker, metrics, tracing, async exchange). */
function run<S>(calls: Call<S>[], ctx: Ctx): Promise<Outcome<S>[]> {
  if (!ctx.dispatch) throw new Error('unreachable: the engine provides dispatch to plan stages');
  return ctx.dispatch(calls);
}

type Demographic =
  | { ok: true; demographics: Demographics; ownId: PatientId }
  | { ok: false; error: (c: RemoteCommunity) => RegistryError };

/**
 * ITI-47 by patient id to our Patient Demographics Supplier: the demographics, and the patient's id
 * of our own assigning authority (when the consumer asked with another id the supplier knows).
 */
async function demographicsOf(local: PatientId, ctx: Ctx): Promise<Demographic> {
  const dir = ctx.gateway.directory;
  const ours = dir.patientIdentity?.assigningAuthority;
  const endpoint = dir.local.patientDemographicsSupplier;
  const unavailable = (why: string) => (c: RemoteCommunity) =>
    registryError(
      ErrorCode.UnavailableCommunity,
      `community ${c.homeCommunityId} was not asked: the patient's demographics for patient discovery are not available (${why})`,
      undefined,
      { community: c.homeCommunityId },
    );
  if (!endpoint) return { ok: false, error: unavailable('no Patient Demographics Supplier is configured') };
  const target: Target = {
    kind: 'local',
    location: dir.homeCommunityId,
    label: 'patient demographics supplier',
    endpoint,
  };
  const query = newPatientQuery({
    sender: ownDevice(ctx),
    receivers: [{ id: { root: homeOid(dir.homeCommunityId) }, telecom: endpoint.url }],
    ids: [patientIdToIi(local)],
    demographics: { names: [], addresses: [] },
    scopingOrganizations: [...new Set([local.assigningAuthority, ours ?? local.assigningAuthority])],
  });
  const call = patientQueryCall(target, 'ITI-47', query, () => []);
  const [o] = await run([call], ctx);
  const records = o.ok ? o.value.matches.filter((m) => sameId(m, local)) : [];
  audit(ctx, 'ITI-47', call, o, [patientCx(local), ...answerPatientIds(o.ok ? o.value : undefined)]);
  if (!o.ok) return { ok: false, error: unavailable(`ITI-47 failed: ${o.failure.kind}`) };
  if (o.value.acknowledgement !== 'AA')
    return { ok: false, error: unavailable(`ITI-47 answered ${o.value.queryResponseCode}`) };
  if (records.length !== 1)
    return {
      ok: false,
      error: (c) =>
        notAsked(
          c,
          `our Patient Demographics Supplier has ${records.length ? 'several records' : 'no record'} of the patient`,
        ),
    };
  const r = records[0];
  const own = [r.patientId, ...r.otherIds].map(iiToPatientId).find((p) => p && p.assigningAuthority === ours);
  return { ok: true, demographics: r.person, ownId: own ?? local };
}

function sameId(m: PatientMatch, p: PatientId): boolean {
  return [m.patientId, ...m.otherIds].some((ii) => ii.root === p.assigningAuthority && ii.extension === p.id);
}

function discoveryCall(ownId: PatientId, person: Demographics, c: RemoteCommunity, ctx: Ctx) {
  const endpoint = c.endpoints.iti55;
  if (!endpoint) throw new Error('unreachable: the directory requires iti55 for xcpd communities');
  const query: PatientQuery = newPatientQuery({
    sender: ownDevice(ctx),
    receivers: [{ id: { root: homeOid(c.homeCommunityId) }, telecom: endpoint.url }],
    // Demographic query and feed (ITI TF-2 3.55.1): our id, named as ours by authorOrPerformer.
    senderAssigningAuthority: ownId.assigningAuthority,
    ids: [patientIdToIi(ownId)],
    demographics: person,
  });
  return patientQueryCall(
    { kind: 'community', location: c.homeCommunityId, label: c.name, community: c, endpoint },
    'ITI-55',
    query,
    (why: CallFailure) => unavailableCommunity(c.homeCommunityId, why),
  );
}

interface Verdict {
  patientId?: string;
  notKnown?: boolean;
  errors?: RegistryError[];
}

/** Reads one community's ITI-55 answer (ITI TF-2 3.55.4.2.3). */
function judge(a: Answer, c: RemoteCommunity): Verdict {
  const home = c.homeCommunityId;
  const warn = (why: string): Verdict => ({ errors: [notAsked(c, why)] });
  const codes = a.issues.map((i) => i.code);
  if (a.acknowledgement !== 'AA' || a.queryResponseCode === 'AE' || a.queryResponseCode === 'QE') {
    if (a.issues.some((i) => i.code === 'AnswerNotAvailable' && i.codeSystem === XCPD_ERROR_SYSTEM))
      return warn('its patient discovery answered AnswerNotAvailable');
    return {
      errors: [
        registryError(
          ErrorCode.UnavailableCommunity,
          `community ${home} could not answer patient discovery (${a.acknowledgement}/${a.queryResponseCode}${codes.length ? ` ${codes.join(' ')}` : ''})`,
          undefined,
          { community: home },
        ),
      ],
    };
  }
  // A Responding Gateway may name patients of other communities it knows (custodian): not ours to use here.
  const own = a.matches.filter((m) => m.custodian === undefined || m.custodian === homeOid(home));
  if (own.length === 0) {
    if (codes.length) {
      const asked = a.issues.filter((i) => i.codeSystem === MORE_ATTRIBUTES_SYSTEM).map((i) => i.code);
      return warn(
        asked.length
          ? `it could not decide between candidates and asks for more demographics (${asked.join(', ')})`
          : `its patient discovery answered ${codes.join(', ')}`,
      );
    }
    return { notKnown: true };
  }
  if (own.length > 1 || a.truncated) return warn(`its patient discovery returned ${own.length} candidates`);
  const id = iiToPatientId(own[0].patientId);
  if (!id) return warn('its patient discovery returned a patient id that is not an OID-rooted id');
  const authority = c.patientIdentity?.assigningAuthority;
  if (id.assigningAuthority !== authority) {
    return warn(
      `its patient discovery returned a patient id of assigning authority ${id.assigningAuthority}, not its own ${authority}`,
    );
  }
  return { patientId: patientCx(id) };
}

/** The requester-side record of an ITI-55 / ITI-47 we sent, written when its answer is in. */
function audit(
  ctx: Ctx,
  kind: PatientQueryKind,
  call: ReturnType<typeof patientQueryCall>,
  o: Outcome<Answer>,
  patientIds: string[],
  rejected?: string,
): void {
  ctx.gateway.audit.record(
    patientQueryAuditEvent({
      kind,
      side: 'requester',
      queryId: call.query.queryId,
      queryByParameterXml: encodeQueryByParameter(call.query),
      patientIds,
      home: call.target.kind === 'community' ? call.target.location : undefined,
      outcome: !o.ok ? 8 : rejected ? 4 : answerOutcome(o.value),
      description: !o.ok
        ? `${call.target.label} did not answer (${o.failure.kind})`
        : rejected
          ? `answer rejected: ${rejected}`
          : o.value.acknowledgement === 'AA'
            ? undefined
            : `${o.value.acknowledgement}/${o.value.queryResponseCode}`,
      participants: outboundParticipants(call.target),
      ctx,
    }),
  );
}
