/**
 * The XCPD Responding Gateway's decision (ITI TF-2 3.55.4.2.3): which of the candidates our Patient
 * Demographics Supplier returned is the patient asked about, if exactly one is.
 *
 * Every candidate is checked again against the request (identity/match.ts), whatever score the
 * supplier gave it, and must carry an id of our own assigning authority — the ids we hand out are
 * the ids our registry knows and our ITI-38 accepts. One such patient: a match (Case 1). None: no
 * match (Case 4). Several: no match rather than a guess, saying which demographics could decide
 * (Case 3), or AnswerNotAvailable when the request already had them all.
 */
import { randomUUID } from 'node:crypto';
import type { InstanceId } from '../hl7v3/model';
import type { PatientQuery } from '../hl7v3/patient-query';
import {
  MORE_ATTRIBUTES_SYSTEM,
  XCPD_ERROR_SYSTEM,
  type CodedIssue,
  type PatientMatch,
  type PatientQueryAnswer,
} from '../hl7v3/patient-response';
import { demographicsMatch } from './match';

/** Profile rules of an ITI-55 request the schema cannot express (ITI TF-2 3.55.4.1.2). */
export function patientDiscoveryProblems(q: PatientQuery): string[] {
  const d = q.demographics;
  if (q.ids.length === 0 && (!d.names.length || !d.birthTime))
    return ['LivingSubjectName and LivingSubjectBirthTime are required when no LivingSubjectId is given'];
  return [];
}

/** The supplier query for a discovery request: its demographics, and only the ids of our domain. */
export function supplierQuery(
  q: PatientQuery,
  ownAuthority: string,
): Pick<PatientQuery, 'ids' | 'demographics' | 'scopingOrganizations'> {
  return {
    ids: q.ids.filter((i) => i.root === ownAuthority),
    demographics: q.demographics,
    scopingOrganizations: [ownAuthority],
  };
}

function ownId(m: PatientMatch, authority: string): InstanceId | undefined {
  return [m.patientId, ...m.otherIds].find((i) => i.root === authority && i.extension);
}

export function chooseMatch(
  q: PatientQuery,
  candidates: PatientMatch[],
  own: { authority: string; homeOid: string },
): PatientQueryAnswer {
  const askedIds = q.ids.filter((i) => i.root === own.authority);
  const byId = new Map<string, PatientMatch & { own: InstanceId }>();
  for (const m of candidates) {
    const id = ownId(m, own.authority);
    if (!id?.extension || !demographicsMatch(q.demographics, m.person)) continue;
    if (askedIds.length && !askedIds.some((a) => a.extension === id.extension)) continue;
    byId.set(id.extension, { ...m, own: id });
  }
  const found = [...byId.values()];
  if (found.length === 1) {
    const m = found[0];
    return {
      ...noMatch(),
      queryResponseCode: 'OK',
      matches: [
        {
          patientId: m.own,
          otherIds: [],
          person: m.person,
          custodian: own.homeOid,
          healthDataLocator: 'NotHealthDataLocator',
          score: 100,
        },
      ],
    };
  }
  return { ...noMatch(), issues: found.length ? moreAttributes(q) : [] };
}

/** "No patient anywhere close" (AA, NF): no RegistrationEvent, no hint. */
export function noMatch(): PatientQueryAnswer {
  return {
    messageId: { root: randomUUID() },
    acknowledgement: 'AA',
    queryResponseCode: 'NF',
    matches: [],
    issues: [],
  };
}

function moreAttributes(q: PatientQuery): CodedIssue[] {
  const asked: string[] = [];
  if (!q.demographics.gender) asked.push('LivingSubjectAdministrativeGenderRequested');
  if (!q.demographics.addresses.some((a) => a.postalCode)) asked.push('PatientAddressRequested');
  if (!asked.length) return [{ code: 'AnswerNotAvailable', codeSystem: XCPD_ERROR_SYSTEM }];
  return asked.map((code) => ({ code, codeSystem: MORE_ATTRIBUTES_SYSTEM }));
}
