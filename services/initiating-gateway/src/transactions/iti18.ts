/**
 * ITI-18 Registry Stored Query, served by the Initiating Gateway (XCA, ITI TF-1 18.2.1 "XDS
 * Affinity Domain Option"; ITI TF-2 3.18 and 3.38).
 *
 * A patient-based query (FindDocuments, FindSubmissionSets, FindFolders, GetAll, …) goes to our
 * own registry as ITI-18 and to every community in the directory as ITI-38, all at once. A query
 * by id (GetDocuments, GetAssociations, …) goes only to the community named by its `home`
 * (ITI TF-2 3.18.4.1.3, 3.18.4.1.2.3.8): ours → our registry; another known one → ITI-38 to it; an
 * unknown one → XDSUnknownCommunity; none → Failure with XDSMissingHomeCommunityId (an Initiating
 * Gateway "shall verify homeCommunityId has been specified", even for entries of our own registry).
 * The answers are merged; every object carries the home it came from (ours for our registry's); an
 * XDSUnknownPatientId from a Responding Gateway is not passed on (3.38.4.1.3); every error is located
 * at the community it is about, ours for our registry's and for errors in the request.
 * Which patient id each community is asked with follows its patientIdentity (shared, xcpd, static):
 * the XCPD step (ITI-55, cached) runs in plan, before the Cross Gateway Queries (identity/discover.ts).
 */
import {
  Action,
  adhocQueryRequestFor,
  adhocQueryRequestXml,
  consolidatedStatus,
  decodeQuery,
  documentEntryFacts,
  encodeQueryResult,
  ErrorCode,
  isHomeCommunityId,
  isPatientQuery,
  locate,
  mergeQueryAnswers,
  patientIdsFor,
  queryAuditEvents,
  queryPatientId,
  queryCall,
  registryError,
  unavailableCommunity,
  validateQuery,
  withTranslatedPatients,
  type AdhocQueryRequest,
  type AdhocQueryResponse,
  type Call,
  type Ctx,
  type DocumentKey,
  type DocumentIntegrity,
  type Outcome,
  type PatientIds,
  type Plan,
  type QueryResult,
  type RegistryError,
  type RemoteCommunity,
  type Target,
  type Transaction,
} from '@xcai/shared';

/** The patient id each community was asked with, from plan to merge and audit of the same request. */
const patientIds = new WeakMap<AdhocQueryRequest, PatientIds>();

export const iti18: Transaction<AdhocQueryRequest, AdhocQueryResponse, QueryResult> = {
  name: 'ITI-18',
  requestAction: Action.ITI18,
  responseAction: Action.ITI18Response,

  decode: decodeQuery,

  validate(req) {
    const errors = validateQuery(req);
    if (req.home !== undefined && !isHomeCommunityId(req.home)) {
      errors.push(
        registryError(ErrorCode.UnknownCommunity, `home ${req.home} is not a homeCommunityId (urn:oid:…)`),
      );
    }
    return errors;
  },

  async plan(req, ctx): Promise<Plan<AdhocQueryResponse>> {
    const dir = ctx.gateway.directory;
    const local = () => localRegistryCall(req, ctx);
    const remote = (c: RemoteCommunity, patientId?: string) => remoteCall(req, c, ctx, patientId);

    if (req.query && isPatientQuery(req.query) && req.home === undefined) {
      const targets = dir.communities.filter((c) => c.endpoints.iti38);
      const ids = await patientIdsFor(queryPatientId(req.query, req.params) ?? '', targets, ctx);
      patientIds.set(req, ids);
      const asked = targets.filter((c) => ids.ids.has(c.homeCommunityId));
      const calls = [local(), ...asked.map((c) => remote(c, ids.ids.get(c.homeCommunityId)))].filter(
        (c): c is Call<AdhocQueryResponse> => c !== undefined,
      );
      return {
        calls,
        errors: [...ids.errors, ...(calls.length || ids.notKnown.size ? [] : [noRegistry()])],
      };
    }
    if (req.home === undefined) {
      return {
        calls: [],
        errors: [
          registryError(
            ErrorCode.MissingHomeCommunityId,
            `a query by id (${req.queryId}) needs the home attribute naming the community that holds the objects`,
          ),
        ],
      };
    }
    if (req.home === dir.homeCommunityId) {
      const call = local();
      return call ? { calls: [call], errors: [] } : { calls: [], errors: [noRegistry()] };
    }
    const community = dir.communities.find((c) => c.homeCommunityId === req.home);
    if (!community) {
      return {
        calls: [],
        errors: [
          registryError(
            ErrorCode.UnknownCommunity,
            `community ${req.home} is not known to this gateway`,
            undefined,
            { community: req.home },
          ),
        ],
      };
    }
    const call = remote(community);
    if (!call) {
      return {
        calls: [],
        errors: [
          registryError(
            ErrorCode.UnknownCommunity,
            `community ${req.home} has no Cross Gateway Query endpoint`,
            undefined,
            { community: req.home },
          ),
        ],
      };
    }
    return { calls: [call], errors: [] };
  },

  async merge(req, outcomes, errors, ctx) {
    const own = ctx.gateway.directory.homeCommunityId;
    const res = mergeQueryAnswers(outcomes, errors, (t) =>
      t.kind === 'local'
        ? { mode: 'set', home: own }
        : { mode: 'fill', home: t.location, community: t.label },
    );
    await forgetStaleCorrelations(req, outcomes, ctx);
    await rememberIntegrity(outcomes, own, ctx);
    // A Responding Gateway's XDSUnknownPatientId is not passed on (3.38.4.1.3); the XCPD step's own
    // warnings (plan errors: a community not asked, and why) are.
    const planned = new Set(errors);
    const passedOn = res.errors.filter(
      (e) => planned.has(e) || !(e.community !== undefined && e.errorCode === ErrorCode.UnknownPatientId),
    );
    // A community that told XCPD it does not know the patient has answered, with nothing.
    const answered =
      res.subRequests.some((r) => r.ok && r.status !== 'Failure') || !!patientIds.get(req)?.notKnown.size;
    return locate(
      { ...res, errors: passedOn, status: consolidatedStatus(passedOn, answered) },
      'community',
      own,
    );
  },

  encode: (res) => encodeQueryResult(res),

  audit: (req, res, ctx, delivery) =>
    withTranslatedPatients(queryAuditEvents('ITI-18', req, res, ctx, delivery), translated(req)),
};

/** The communities asked with another id than the consumer's, and that id. */
function translated(req: AdhocQueryRequest): Map<string, string> {
  const consumer = req.query ? queryPatientId(req.query, req.params) : undefined;
  const out = new Map<string, string>();
  for (const [home, id] of patientIds.get(req)?.ids ?? []) if (id !== consumer) out.set(home, id);
  return out;
}

/** A community that no longer knows the id XCPD gave us (merged, deleted): ask again next time. */
async function forgetStaleCorrelations(
  req: AdhocQueryRequest,
  outcomes: Outcome<AdhocQueryResponse>[],
  ctx: Ctx,
): Promise<void> {
  const cache = ctx.gateway.correlations;
  const consumer = req.query ? queryPatientId(req.query, req.params) : undefined;
  const ids = translated(req);
  if (!cache || !consumer || !ids.size) return;
  for (const o of outcomes) {
    const home = o.call.target.location;
    if (o.ok && ids.has(home) && o.value.errors.some((e) => e.errorCode === ErrorCode.UnknownPatientId))
      await cache.forget(consumer, home);
  }
}

function localRegistryCall(req: AdhocQueryRequest, ctx: Ctx): Call<AdhocQueryResponse> | undefined {
  const dir = ctx.gateway.directory;
  const registry = dir.local.registry;
  if (!registry) return undefined;
  const target: Target = {
    kind: 'local',
    location: dir.homeCommunityId,
    label: 'local registry',
    endpoint: registry,
  };
  return queryCall(target, 'ITI-18', adhocQueryRequestXml(req, req.home), (why) => [
    registryError(ErrorCode.RegistryError, `the community's registry did not answer: ${why.message}`),
  ]);
}

function remoteCall(
  req: AdhocQueryRequest,
  c: RemoteCommunity,
  ctx: Ctx,
  patientId?: string,
): Call<AdhocQueryResponse> | undefined {
  void ctx;
  if (!c.endpoints.iti38) return undefined;
  const target: Target = {
    kind: 'community',
    location: c.homeCommunityId,
    label: c.name,
    community: c,
    endpoint: c.endpoints.iti38,
  };
  // ITI-38 carries home whenever the query names no patient (ITI TF-2 3.38.4.1.2.1).
  const home = req.query && isPatientQuery(req.query) ? req.home : c.homeCommunityId;
  const consumer = req.query ? queryPatientId(req.query, req.params) : undefined;
  const body =
    patientId !== undefined && patientId !== consumer
      ? adhocQueryRequestFor(req, home, patientId)
      : adhocQueryRequestXml(req, home);
  return queryCall(target, 'ITI-38', body, (why) => unavailableCommunity(c.homeCommunityId, why));
}

function noRegistry(): RegistryError {
  return registryError(ErrorCode.RegistryError, 'no registry or community is configured to answer queries');
}

/** Keeps hash/size of every DocumentEntry that passed through, for checking later retrieves (M2). */
async function rememberIntegrity(
  outcomes: Outcome<AdhocQueryResponse>[],
  own: string,
  ctx: Ctx,
): Promise<void> {
  const store = ctx.gateway.integrity;
  if (!store) return;
  const entries: (DocumentKey & DocumentIntegrity)[] = [];
  for (const o of outcomes) {
    if (!o.ok) continue;
    for (const obj of o.value.objects) {
      const f = documentEntryFacts(obj);
      if (!f?.uniqueId || !f.repositoryUniqueId) continue;
      const home = o.call.target.kind === 'local' ? own : (f.home ?? o.call.target.location);
      entries.push({
        homeCommunityId: home,
        repositoryUniqueId: f.repositoryUniqueId,
        documentUniqueId: f.uniqueId,
        hash: f.hash,
        size: f.size,
      });
    }
  }
  try {
    await store.remember(entries);
  } catch (e) {
    ctx.log.warn('could not remember document hashes', { error: e as Error });
  }
}
