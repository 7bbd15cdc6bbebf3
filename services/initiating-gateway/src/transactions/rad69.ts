/**
 * RAD-69 Retrieve Imaging Document Set, served by the Initiating Imaging Gateway (XCA-I, RAD TF-1
 * 29.3, RAD TF-3 4.69 / 4.75).
 *
 * The DocumentRequests are grouped by HomeCommunityId, keeping their Study/Series nesting and the
 * consumer's TransferSyntaxUIDList: ours → our Imaging Document Source named by RepositoryUniqueId,
 * as RAD-69; another community → RAD-75 to its Responding Imaging Gateway; none → ours only when the
 * Imaging Document Source is ours, else XDSMissingHomeCommunityId (RAD TF-3 4.69.4.1.2, see
 * routeByHome). All at once; one MTOM response streamed to the consumer as the parts arrive. Every
 * instance is checked on the way: application/dicom, a Part 10 header, the SOP Instance UID asked for
 * and one of the transfer syntaxes asked for. Every error about an instance carries its SOP Instance
 * UID in location (RAD TF-3 4.69.5), the community in codeContext — also the errors relayed from a
 * Responding Imaging Gateway, which locates them at its homeCommunityId.
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
  locate,
  localImagingSourceRoute,
  mergeRetrieve,
  planRetrieve,
  remoteCommunityRoute,
  routeByHome,
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
  releasesRequestTree: true,

  decode: (ctx) => decodeRetrieveImagingDocumentSetRequest(ctx.envelope.payload),

  validate: (req) => validateImagingRequest(req),

  plan(req, ctx) {
    const dir = ctx.gateway.directory;
    const ts = req.transferSyntaxUids;
    return planRetrieve(imagingDocuments(req), (d) =>
      routeByHome(
        d,
        dir,
        dir.local.imagingDocumentSources,
        () => localImagingSourceRoute(d, dir, ts),
        () => remoteCommunityRoute(d, dir, 'RAD-75', imagingBody(ts)),
      ),
    );
  },

  merge: async (req, outcomes, errors, ctx) =>
    locate(
      await mergeRetrieve(outcomes, errors, initiatingPolicy(ctx, dicomCheck(req.transferSyntaxUids)), ctx),
      'document',
      ctx.gateway.directory.homeCommunityId,
    ),

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
