/**
 * ITI-38 Cross Gateway Query, served by the Responding Gateway (ITI TF-2 3.38).
 *
 * - A query that names no patient must carry `home` (XDSMissingHomeCommunityId), and `home` must be
 *   ours (XDSUnknownCommunity) — ITI TF-2 3.38.4.1.2.1, 3.38.4.1.3.
 * - The query is passed to our registry as ITI-18; FindDocuments and GetDocuments are required,
 *   the other stored queries pass through.
 * - Every returned ExtrinsicObject, RegistryPackage, Association, ObjectRef (every top-level object)
 *   gets home = our homeCommunityId.
 * - An unknown patient — and a malformed patient id, which must look the same from outside
 *   (IHE XCA-I M6) — gives, by policy, an empty Success or XDSUnknownPatientId.
 * - Only what may leave the community is answered (R9, R10): a patient whose consent refuses the
 *   calling community is answered exactly like an unknown patient (disclosure/).
 * - Every RegistryError carries our homeCommunityId in location, also those our registry made
 *   (ITI TF-2 3.38.4.1.3).
 */
import {
  Action,
  decodeQuery,
  encodeQueryResult,
  ErrorCode,
  isPatientQuery,
  locate,
  mergeQueryAnswers,
  queryAuditEvents,
  queryCall,
  queryPatientId,
  registryError,
  registryQuery,
  screenQueryAnswer,
  validateQuery,
  type AdhocQueryRequest,
  type AdhocQueryResponse,
  type Ctx,
  type QueryResult,
  type Transaction,
} from '@xcai/shared';

/** HL7 CX with an ISO assigning authority: `id^^^&1.2.3&ISO`. */
const CX = /^[^^&~\\|]{1,64}\^\^\^&[0-2](\.(0|[1-9][0-9]*)){1,40}&ISO$/;

export const iti38: Transaction<AdhocQueryRequest, AdhocQueryResponse, QueryResult> = {
  name: 'ITI-38',
  requestAction: Action.ITI38,
  responseAction: Action.ITI38Response,

  decode: decodeQuery,

  validate(req, ctx) {
    const errors = validateQuery(req);
    if (errors.length) return errors;
    const own = ctx.gateway.directory.homeCommunityId;
    if (req.home === undefined && req.query && !isPatientQuery(req.query)) {
      return [
        registryError(
          ErrorCode.MissingHomeCommunityId,
          `a query without a patient id (${req.queryId}) must carry the home attribute`,
        ),
      ];
    }
    if (req.home !== undefined && req.home !== own) {
      return [registryError(ErrorCode.UnknownCommunity, `home ${req.home} is not served by this gateway`)];
    }
    return [];
  },

  plan(req, ctx) {
    const registry = ctx.gateway.directory.local.registry;
    const own = ctx.gateway.directory.homeCommunityId;
    const patient = req.query ? queryPatientId(req.query, req.params) : undefined;
    if (patient !== undefined && !CX.test(patient)) return { calls: [], errors: [] }; // M6: answered as unknown
    if (!registry) {
      return {
        calls: [],
        errors: [registryError(ErrorCode.RegistryError, 'no registry is configured')],
      };
    }
    const target = { kind: 'local' as const, location: own, label: 'local registry', endpoint: registry };
    // The registry is a plain XDS registry: `home` is ours by now and is not passed on.
    return {
      calls: [
        queryCall(
          target,
          'ITI-18',
          registryQuery(req, ctx),
          (why) => [registryError(ErrorCode.RegistryError, `the registry did not answer: ${why.message}`)],
          { relayOnly: true },
        ),
      ],
      errors: [],
    };
  },

  async merge(req, outcomes, errors, ctx) {
    const own = ctx.gateway.directory.homeCommunityId;
    const merged = mergeQueryAnswers(outcomes, errors, () => ({ mode: 'set', home: own }));
    const { res, refused } = await screenQueryAnswer(req, merged, ctx);
    const patientQuery = req.query !== undefined && isPatientQuery(req.query) && errors.length === 0;
    const unknown =
      patientQuery &&
      (refused ||
        (res.objects.length === 0 &&
          (outcomes.length === 0 || res.errors.some((e) => e.errorCode === ErrorCode.UnknownPatientId))));
    return locate(unknown ? unknownPatientAnswer(res, ctx) : res, 'responder', own);
  },

  encode: (res) => encodeQueryResult(res),

  audit: (req, res, ctx, delivery) => queryAuditEvents('ITI-38', req, res, ctx, delivery),
};

function unknownPatientAnswer(res: QueryResult, ctx: Ctx): QueryResult {
  const policy = ctx.gateway.directory.policy.unknownPatient;
  if (policy === 'empty-success') return { ...res, status: 'Success', errors: [], objects: [] };
  return {
    ...res,
    status: 'Failure',
    errors: [registryError(ErrorCode.UnknownPatientId, 'the patient is not known in this community')],
    objects: [],
  };
}
