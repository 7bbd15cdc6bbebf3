/**
 * ITI-39 Cross Gateway Retrieve, served by the Responding Gateway (ITI TF-2 3.39).
 *
 * HomeCommunityId is mandatory in every DocumentRequest (XDSMissingHomeCommunityId) and must be
 * ours (XDSUnknownCommunity). The documents are split by RepositoryUniqueId into ITI-43 requests
 * to our repositories, merged, and every DocumentResponse carries our HomeCommunityId. Every
 * RegistryError carries our homeCommunityId in location, the document in codeContext (3.39.4.1.3).
 * A document that may not leave the community (R9, R10) is answered as unknown, unfetched.
 */
import {
  Action,
  decodeRetrieveDocumentSetRequest,
  type DocumentRequest,
  encodeRetrieveResult,
  locate,
  localRepositoryRoute,
  mergeRetrieve,
  missingHome,
  planRetrieve,
  respondingPolicy,
  screenRetrieve,
  type RetrieveAnswer,
  retrieveAuditEvents,
  type RetrieveResult,
  type Transaction,
  unknownCommunity,
} from '@xcai/shared';

export const iti39: Transaction<DocumentRequest[], RetrieveAnswer, RetrieveResult> = {
  name: 'ITI-39',
  requestAction: Action.ITI39,
  responseAction: Action.ITI39Response,
  releasesRequestTree: true,

  decode: (ctx) => decodeRetrieveDocumentSetRequest(ctx.envelope.payload),

  validate: () => [],

  async plan(docs, ctx) {
    const dir = ctx.gateway.directory;
    const release = await screenRetrieve(docs, ctx, 'ITI-39');
    return planRetrieve(docs, (d) => {
      if (!d.homeCommunityId) return missingHome(d);
      if (d.homeCommunityId !== dir.homeCommunityId)
        return unknownCommunity(d, 'is not served by this gateway');
      return release.withheld(d) ?? localRepositoryRoute(d, dir);
    });
  },

  merge: async (_docs, outcomes, errors, ctx) =>
    locate(
      await mergeRetrieve(outcomes, errors, respondingPolicy(ctx), ctx),
      'responder',
      ctx.gateway.directory.homeCommunityId,
    ),

  encode: (res) => encodeRetrieveResult(res),

  audit: (docs, res, ctx, delivery) =>
    retrieveAuditEvents({
      served: 'ITI-39',
      requested: docs,
      res,
      ctx,
      delivery,
      subTransaction: () => 'ITI-43',
      imaging: false,
    }),
};
