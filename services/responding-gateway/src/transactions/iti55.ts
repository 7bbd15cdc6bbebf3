/**
 * ITI-55 Cross Gateway Patient Discovery, served by the XCPD Responding Gateway (ITI TF-2 3.55).
 *
 * The request's demographics (and any LivingSubjectId of our own assigning authority) go to our
 * Patient Demographics Supplier as ITI-47; of its candidates, the one that matches the request on
 * every criterion is answered with our id, our homeCommunityId as custodian and the query echoed;
 * several are answered as no match (identity/respond.ts). Matches are answered "after
 * consideration of all policy constraints" (3.55.4.1.3.1): a patient whose consent refuses the
 * calling community is no match (R10, R42; disclosure/). A request without the required
 * parameters is a query error (QE), one for the Deferred Response Option an unsupported mode, a
 * supplier that cannot answer an application error (AE, InternalError) — never a guess.
 */
import {
  Action,
  answerOutcome,
  answerPatientIds,
  chooseMatch,
  decodePatientQueryRequest,
  encodePatientAnswer,
  encodeQueryByParameter,
  errorAnswer,
  homeOid,
  idsAsCx,
  inboundParticipants,
  newPatientQuery,
  outboundParticipants,
  ownDevice,
  patientDiscoveryProblems,
  patientQueryAuditEvent,
  patientQueryCall,
  registryError,
  screenPatientMatch,
  supplierQuery,
  XCPD_ERROR_SYSTEM,
  type DecodedPatientQuery,
  type DecodedPatientQueryAnswer,
  type Outcome,
  type PatientQueryAnswer,
  type Transaction,
} from '@xcai/shared';

type SupplierCall = ReturnType<typeof patientQueryCall>;

export interface Discovery {
  /** The request, whose sender, ids and query the answer echoes. */
  request: DecodedPatientQuery;
  answer: PatientQueryAnswer;
  /** The ITI-47 to our supplier and how it went (its requester-side audit record). */
  supplier?: Outcome<DecodedPatientQueryAnswer>;
  /** Our patient, matched but not disclosed to the caller (our own audit record names them). */
  withheld?: string;
}

const internalError = (detail: string) =>
  errorAnswer('AE', detail, [{ code: 'InternalError', codeSystem: XCPD_ERROR_SYSTEM }]);

export const iti55: Transaction<DecodedPatientQuery, DecodedPatientQueryAnswer, Discovery> = {
  name: 'ITI-55',
  requestAction: Action.ITI55,
  responseAction: Action.ITI55Response,

  decode: decodePatientQueryRequest,

  // Problems travel as RegistryErrors inside the pipeline; merge answers them in HL7 V3 (errorCode QE / NS250).
  validate(req) {
    if (req.responsePriority === 'D')
      return [
        registryError('NS250', 'the Deferred Response Option is not supported: send responsePriorityCode I'),
      ];
    return [...req.problems, ...patientDiscoveryProblems(req)].map((p) => registryError('QE', p));
  },

  plan(req, ctx) {
    const dir = ctx.gateway.directory;
    const endpoint = dir.local.patientDemographicsSupplier;
    const authority = dir.patientIdentity?.assigningAuthority;
    if (!endpoint || !authority)
      return {
        calls: [],
        errors: [registryError('AE', 'patient discovery is not configured in this community')],
      };
    const query = newPatientQuery({
      sender: ownDevice(ctx),
      receivers: [{ id: { root: homeOid(dir.homeCommunityId) }, telecom: endpoint.url }],
      ...supplierQuery(req, authority),
    });
    const target = {
      kind: 'local' as const,
      location: dir.homeCommunityId,
      label: 'patient demographics supplier',
      endpoint,
    };
    return { calls: [patientQueryCall(target, 'ITI-47', query, () => [])], errors: [] };
  },

  async merge(req, outcomes, errors, ctx) {
    const e = errors[0];
    if (e)
      return {
        request: req,
        answer:
          e.errorCode === 'NS250'
            ? { ...errorAnswer('AE', e.codeContext), detailCode: 'NS250' }
            : e.errorCode === 'QE'
              ? errorAnswer('QE', errors.map((x) => x.codeContext).join('; '))
              : internalError(e.codeContext),
      };
    const supplier = outcomes[0];
    if (!supplier?.ok)
      return {
        request: req,
        answer: internalError('the patient demographics supplier did not answer'),
        supplier,
      };
    if (supplier.value.acknowledgement !== 'AA')
      return {
        request: req,
        answer: internalError('the patient demographics supplier could not answer'),
        supplier,
      };
    const dir = ctx.gateway.directory;
    const match = chooseMatch(req, supplier.value.matches, {
      authority: dir.patientIdentity?.assigningAuthority ?? '',
      homeOid: homeOid(dir.homeCommunityId),
    });
    const { answer, withheld } = await screenPatientMatch(match, ctx);
    return { request: req, answer, supplier, withheld };
  },

  encode: (res, ctx) => encodePatientAnswer(res.request, res.answer, ctx),

  audit(req, res, ctx, delivery) {
    const served = patientQueryAuditEvent({
      kind: 'ITI-55',
      side: 'responder',
      queryId: req.queryId,
      queryByParameterXml: req.queryByParameterXml,
      patientIds: [
        ...idsAsCx(req.ids),
        ...answerPatientIds(res?.answer),
        ...(res?.withheld ? [res.withheld] : []),
      ],
      home: req.sender.organization && `urn:oid:${req.sender.organization}`,
      outcome: delivery.ok ? answerOutcome(res?.answer) : 8,
      description: res?.answer.detail,
      participants: inboundParticipants(ctx),
      ctx,
    });
    const s = res?.supplier;
    if (!s) return [served];
    const call = s.call as SupplierCall;
    const asked = patientQueryAuditEvent({
      kind: 'ITI-47',
      side: 'requester',
      queryId: call.query.queryId,
      queryByParameterXml: encodeQueryByParameter(call.query),
      patientIds: s.ok ? answerPatientIds(s.value) : [],
      outcome: s.ok ? answerOutcome(s.value) : 8,
      description: s.ok ? undefined : `${call.target.label} did not answer (${s.failure.kind})`,
      participants: outboundParticipants(call.target),
      ctx,
    });
    return [served, asked];
  },
};
