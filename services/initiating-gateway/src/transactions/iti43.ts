/**
 * ITI-43 Retrieve Document Set, served by the Initiating Gateway (XCA, ITI TF-2 3.43 and 3.39).
 *
 * The DocumentRequests are split by HomeCommunityId: ours (or none) → our repository named by
 * RepositoryUniqueId, as ITI-43; another community → ITI-39 Cross Gateway Retrieve to it, one
 * request per community (more if it takes fewer documents per request). All run at once under the
 * deadline and merge into one MTOM response. Each document is checked against the hash and size
 * the registry announced in the query that passed through this gateway (IHE XCA-I M2); a
 * mismatch withholds it and names it in a RegistryError.
 */
import {
  Action,
  decodeRetrieveDocumentSetRequest,
  documentUnavailable,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveResult,
  initiatingPolicy,
  mergeRetrieve,
  planRetrieve,
  repositoryFailed,
  retrieveAuditEvents,
  unknownCommunity,
  unknownRepository,
  type Ctx,
  type DocumentRequest,
  type RetrieveAnswer,
  type RetrieveResult,
  type Route,
  type Transaction,
  type Verification,
} from '@xcai/shared';

export const iti43: Transaction<DocumentRequest[], RetrieveAnswer, RetrieveResult> = {
  name: 'ITI-43',
  requestAction: Action.ITI43,
  responseAction: Action.ITI43Response,

  decode: (ctx) => decodeRetrieveDocumentSetRequest(ctx.envelope.payload),

  validate: () => [],

  plan: (docs, ctx) => planRetrieve(docs, (d) => route(d, ctx)),

  async merge(docs, outcomes, errors, ctx) {
    const expected = await registeredIntegrity(docs, ctx);
    return mergeRetrieve(
      outcomes,
      errors,
      initiatingPolicy(ctx, (r) => expected.get(r)),
      ctx,
    );
  },

  encode: (res) => encodeRetrieveResult(res),

  audit: (docs, res, ctx, delivery) =>
    retrieveAuditEvents({
      served: 'ITI-43',
      requested: docs,
      res,
      ctx,
      delivery,
      subTransaction: (t) => (t.kind === 'local' ? 'ITI-43' : 'ITI-39'),
      imaging: false,
    }),
};

function route(d: DocumentRequest, ctx: Ctx): Route<DocumentRequest> | ReturnType<typeof unknownCommunity> {
  const dir = ctx.gateway.directory;
  if (!d.homeCommunityId || d.homeCommunityId === dir.homeCommunityId) {
    const repo = dir.local.repositories.find((r) => r.repositoryUniqueId === d.repositoryUniqueId);
    if (!repo) return unknownRepository(d);
    return {
      key: `repo:${repo.repositoryUniqueId}`,
      target: {
        kind: 'local',
        location: repo.repositoryUniqueId,
        label: `repository ${repo.repositoryUniqueId}`,
        endpoint: repo,
      },
      maxPerCall: Number.MAX_SAFE_INTEGER,
      action: Action.ITI43,
      responseAction: Action.ITI43Response,
      body: encodeRetrieveDocumentSetRequest,
      failed: (doc, reason) =>
        repositoryFailed(doc, repo.repositoryUniqueId, `the repository did not answer: ${reason}`),
    };
  }
  const c = dir.communities.find((x) => x.homeCommunityId === d.homeCommunityId);
  if (!c) return unknownCommunity(d);
  const endpoint = c.endpoints.iti39;
  if (!endpoint) return unknownCommunity(d, 'has no Cross Gateway Retrieve endpoint');
  return {
    key: `community:${c.homeCommunityId}`,
    target: { kind: 'community', location: c.homeCommunityId, label: c.name, community: c, endpoint },
    maxPerCall: c.maxDocumentsPerRequest,
    action: Action.ITI39,
    responseAction: Action.ITI39Response,
    body: encodeRetrieveDocumentSetRequest,
    failed: (doc, reason) => documentUnavailable(doc, c.homeCommunityId, reason),
  };
}

/** The hash/size registered for each requested document, when a query passed through us. */
async function registeredIntegrity(
  docs: DocumentRequest[],
  ctx: Ctx,
): Promise<Map<DocumentRequest, Verification>> {
  const store = ctx.gateway.integrity;
  const out = new Map<DocumentRequest, Verification>();
  if (!store) return out;
  const own = ctx.gateway.directory.homeCommunityId;
  try {
    const found = await store.lookup(
      docs.map((d) => ({
        homeCommunityId: d.homeCommunityId ?? own,
        repositoryUniqueId: d.repositoryUniqueId,
        documentUniqueId: d.documentUniqueId,
      })),
    );
    docs.forEach((d, i) => {
      const f = found[i];
      if (f) out.set(d, { kind: 'hash', sha1: f.hash, size: f.size });
    });
  } catch (e) {
    ctx.log.warn('registered hashes unavailable; documents pass unchecked', { error: e as Error });
  }
  const unchecked = docs.length - out.size;
  if (unchecked > 0)
    ctx.log.debug('documents without registered hash/size (no query seen through this gateway)', {
      unchecked,
    });
  return out;
}
