/**
 * ITI-43 Retrieve Document Set, served by the Initiating Gateway (XCA, ITI TF-2 3.43 and 3.39).
 *
 * The DocumentRequests are split by HomeCommunityId (3.43.4.1.3): ours → our repository named by
 * RepositoryUniqueId, as ITI-43; another community → ITI-39 Cross Gateway Retrieve to it, one
 * request per community (more if it takes fewer documents per request); none → ours only when the
 * repository is ours, else XDSMissingHomeCommunityId (3.43.4.1.2, see routeByHome). All run at once
 * under the deadline and merge into one MTOM response. Each document is checked against the hash and
 * size the registry announced in the query that passed through this gateway (IHE XCA-I M2); a
 * mismatch withholds it and names it in a RegistryError. Errors are located at the community they
 * are about (ours for our repositories), the document named in codeContext.
 */
import {
  Action,
  type Ctx,
  decodeRetrieveDocumentSetRequest,
  type DocumentRequest,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveResult,
  initiatingPolicy,
  locate,
  localRepositoryRoute,
  mergeRetrieve,
  planRetrieve,
  remoteCommunityRoute,
  routeByHome,
  type RetrieveAnswer,
  retrieveAuditEvents,
  type RetrieveResult,
  type Transaction,
  type Verification,
} from '@xcai/shared';

export const iti43: Transaction<DocumentRequest[], RetrieveAnswer, RetrieveResult> = {
  name: 'ITI-43',
  requestAction: Action.ITI43,
  responseAction: Action.ITI43Response,
  releasesRequestTree: true,

  decode: (ctx) => decodeRetrieveDocumentSetRequest(ctx.envelope.payload),

  validate: () => [],

  plan(docs, ctx) {
    const dir = ctx.gateway.directory;
    return planRetrieve(docs, (d) =>
      routeByHome(
        d,
        dir,
        dir.local.repositories,
        () => localRepositoryRoute(d, dir),
        () => remoteCommunityRoute(d, dir, 'ITI-39', encodeRetrieveDocumentSetRequest),
      ),
    );
  },

  async merge(docs, outcomes, errors, ctx) {
    const expected = await registeredIntegrity(docs, ctx);
    const res = await mergeRetrieve(
      outcomes,
      errors,
      initiatingPolicy(ctx, (r) => expected.get(r)),
      ctx,
    );
    return locate(res, 'community', ctx.gateway.directory.homeCommunityId);
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
