/**
 * RAD-69 Retrieve Imaging Document Set, served by the Initiating Imaging Gateway (XCA-I, RAD TF-1
 * 29.3, RAD TF-3 4.69 / 4.75).
 *
 * The DocumentRequests are grouped by HomeCommunityId, keeping their Study/Series nesting and the
 * consumer's TransferSyntaxUIDList: ours (or none) → our Imaging Document Source named by
 * RepositoryUniqueId, as RAD-69; another community → RAD-75 to its Responding Imaging Gateway. All
 * at once; one MTOM response streamed to the consumer as the parts arrive. Every instance is
 * checked on the way: application/dicom, a Part 10 header, the SOP Instance UID asked for and one
 * of the transfer syntaxes asked for.
 */
import {
  Action,
  decodeRetrieveImagingDocumentSetRequest,
  dicomCheck,
  encodeRetrieveResult,
  imagingBody,
  imagingDocuments,
  type ImagingRequest,
  initiatingPolicy,
  isOurs,
  localImagingSourceRoute,
  mergeRetrieve,
  planRetrieve,
  remoteCommunityRoute,
  type RetrieveAnswer,
  retrieveAuditEvents,
  type RetrieveResult,
  type Transaction,
  validateImagingRequest,
} from '@xcai/shared';

export const rad69: Transaction<ImagingRequest, RetrieveAnswer, RetrieveResult> = {
  name: 'RAD-69',
  requestAction: Action.RAD69,
  responseAction: Action.RAD69Response,

  decode: (ctx) => decodeRetrieveImagingDocumentSetRequest(ctx.envelope.payload),

  validate: (req) => validateImagingRequest(req),

  plan(req, ctx) {
    const dir = ctx.gateway.directory;
    const ts = req.transferSyntaxUids;
    return planRetrieve(imagingDocuments(req), (d) =>
      isOurs(d, dir)
        ? localImagingSourceRoute(d, dir, ts)
        : remoteCommunityRoute(d, dir, 'RAD-75', imagingBody(ts)),
    );
  },

  merge: (req, outcomes, errors, ctx) =>
    mergeRetrieve(outcomes, errors, initiatingPolicy(ctx, dicomCheck(req.transferSyntaxUids)), ctx),

  encode: (res) => encodeRetrieveResult(res),

  audit: (req, res, ctx, delivery) =>
    retrieveAuditEvents({
      served: 'RAD-69',
      requested: imagingDocuments(req),
      res,
      ctx,
      delivery,
      subTransaction: (t) => (t.kind === 'local' ? 'RAD-69' : 'RAD-75'),
      imaging: true,
    }),
};
