/**
 * RAD-75 Cross Gateway Retrieve Imaging Document Set, served by the Responding Imaging Gateway
 * (XCA-I, RAD TF-1 29.3.2, RAD TF-3 4.75).
 *
 * HomeCommunityId is mandatory in every DocumentRequest and must be ours. The documents are split
 * by RepositoryUniqueId into RAD-69 requests to our Imaging Document Sources, keeping the
 * Study/Series nesting and the transfer syntax list; the answers merge into one streamed MTOM
 * response, our HomeCommunityId on every DocumentResponse, every instance checked on the way. Every
 * RegistryError carries our homeCommunityId in location (RAD TF-3 4.75, Gazelle RAD75-004), also those
 * of the Imaging Document Sources; the instance concerned is named in codeContext.
 * Instances of a study that may not leave the community (R9, R10) are answered as unknown, unfetched.
 */
import {
  Action,
  decodeRetrieveImagingDocumentSetRequest,
  dicomCheck,
  encodeRetrieveResult,
  imagingDocuments,
  type ImagingRequest,
  locate,
  localImagingSourceRoute,
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
  validateImagingRequest,
} from '@xcai/shared';

export const rad75: Transaction<ImagingRequest, RetrieveAnswer, RetrieveResult> = {
  name: 'RAD-75',
  requestAction: Action.RAD75,
  responseAction: Action.RAD75Response,
  releasesRequestTree: true,

  decode: (ctx) => decodeRetrieveImagingDocumentSetRequest(ctx.envelope.payload),

  validate: (req) => validateImagingRequest(req),

  async plan(req, ctx) {
    const dir = ctx.gateway.directory;
    const docs = imagingDocuments(req);
    const release = await screenRetrieve(docs, ctx, 'RAD-75');
    return planRetrieve(docs, (d) => {
      if (!d.homeCommunityId) return missingHome(d);
      if (d.homeCommunityId !== dir.homeCommunityId)
        return unknownCommunity(d, 'is not served by this gateway');
      return release.withheld(d) ?? localImagingSourceRoute(d, dir, req.transferSyntaxUids);
    });
  },

  merge: async (req, outcomes, errors, ctx) =>
    locate(
      await mergeRetrieve(outcomes, errors, respondingPolicy(ctx, dicomCheck(req.transferSyntaxUids)), ctx),
      'responder',
      ctx.gateway.directory.homeCommunityId,
    ),

  encode: (res) => encodeRetrieveResult(res),

  audit: (req, res, ctx, delivery) =>
    retrieveAuditEvents({
      served: 'RAD-75',
      requested: imagingDocuments(req),
      res,
      ctx,
      delivery,
      subTransaction: () => 'RAD-69',
      imaging: true,
    }),
};
