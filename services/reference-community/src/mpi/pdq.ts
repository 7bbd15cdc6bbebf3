/**
 * ITI-47 Patient Demographics Query (PDQv3, ITI TF-2 3.47) served by the reference MPI: the
 * Patient Demographics Supplier of the community. Like the reference registry it runs on the
 * engine without sub-requests and answers in `merge`: OK with every matching patient (its id in
 * the requested domain as patient/id, its other ids as asOtherIDs), NF when none, QE when the
 * query is malformed or names no criterion.
 */
import { randomUUID } from 'node:crypto';
import {
  Action,
  answerOutcome,
  answerPatientIds,
  decodePatientQueryRequest,
  encodePatientAnswer,
  errorAnswer,
  homeOid,
  idsAsCx,
  inboundParticipants,
  patientQueryAuditEvent,
  registryError,
  type DecodedPatientQuery,
  type PatientMatch,
  type PatientQueryAnswer,
  type Transaction,
} from '@xcai/shared';
import type { PatientIndex, PatientRecord } from './index';

interface Answered {
  request: DecodedPatientQuery;
  answer: PatientQueryAnswer;
}

export function patientDemographicsSupplier(
  index: PatientIndex,
  homeCommunityId: string,
): Transaction<DecodedPatientQuery, never, Answered> {
  return {
    name: 'ITI-47',
    requestAction: Action.ITI47,
    responseAction: Action.ITI47Response,
    decode: decodePatientQueryRequest,
    validate(req) {
      const d = req.demographics;
      const empty = !req.ids.length && !d.names.length && !d.birthTime && !d.gender && !d.addresses.length;
      return [...req.problems, ...(empty ? ['the query names no patient id and no demographics'] : [])].map(
        (p) => registryError('QE', p),
      );
    },
    plan: () => ({ calls: [], errors: [] }),
    async merge(req, _outcomes, errors) {
      if (errors.length)
        return { request: req, answer: errorAnswer('QE', errors.map((e) => e.codeContext).join('; ')) };
      const matches = index.find(req).map((r) => asMatch(r, req.scopingOrganizations, homeCommunityId));
      return {
        request: req,
        answer: {
          messageId: { root: randomUUID() },
          acknowledgement: 'AA',
          queryResponseCode: matches.length ? 'OK' : 'NF',
          matches,
          issues: [],
        },
      };
    },
    encode: (res, ctx) => encodePatientAnswer(res.request, res.answer, ctx),
    audit: (req, res, ctx, delivery) => [
      patientQueryAuditEvent({
        kind: 'ITI-47',
        side: 'responder',
        queryId: req.queryId,
        queryByParameterXml: req.queryByParameterXml,
        patientIds: [...idsAsCx(req.ids), ...answerPatientIds(res?.answer)],
        outcome: delivery.ok ? answerOutcome(res?.answer) : 8,
        description: res?.answer.detail,
        participants: inboundParticipants(ctx),
        ctx,
      }),
    ],
  };
}

function asMatch(r: PatientRecord, scoping: string[], homeCommunityId: string): PatientMatch {
  const main = (scoping.length && r.ids.find((i) => scoping.includes(i.root))) || r.ids[0];
  return {
    patientId: main,
    otherIds: r.ids.filter((i) => i !== main && (!scoping.length || scoping.includes(i.root))),
    person: r.person,
    custodian: homeOid(homeCommunityId),
    score: 100,
  };
}
