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
  documentUnavailable,
  encodeRetrieveImagingDocumentSetRequest,
  encodeRetrieveResult,
  imagingDocuments,
  initiatingPolicy,
  mergeRetrieve,
  nestImagingDocuments,
  planRetrieve,
  repositoryFailed,
  retrieveAuditEvents,
  unknownCommunity,
  unknownRepository,
  validateImagingRequest,
  type Ctx,
  type ImagingDocumentRef,
  type ImagingRequest,
  type RetrieveAnswer,
  type RetrieveResult,
  type Route,
  type Transaction,
} from '@xcai/shared';

export const rad69: Transaction<ImagingRequest, RetrieveAnswer, RetrieveResult> = {
  name: 'RAD-69',
  requestAction: Action.RAD69,
  responseAction: Action.RAD69Response,

  decode: (ctx) => decodeRetrieveImagingDocumentSetRequest(ctx.envelope.payload),

  validate: (req) => validateImagingRequest(req),

  plan: (req, ctx) => planRetrieve(imagingDocuments(req), (d) => route(d, req, ctx)),

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

function route(
  d: ImagingDocumentRef,
  req: ImagingRequest,
  ctx: Ctx,
): Route<ImagingDocumentRef> | ReturnType<typeof unknownCommunity> {
  const dir = ctx.gateway.directory;
  const body = (docs: ImagingDocumentRef[]) =>
    encodeRetrieveImagingDocumentSetRequest(nestImagingDocuments(docs, req.transferSyntaxUids));
  if (!d.homeCommunityId || d.homeCommunityId === dir.homeCommunityId) {
    const ids = dir.local.imagingDocumentSources.find((r) => r.repositoryUniqueId === d.repositoryUniqueId);
    if (!ids) return unknownRepository(d);
    return {
      key: `ids:${ids.repositoryUniqueId}`,
      target: {
        kind: 'local',
        location: ids.repositoryUniqueId,
        label: `Imaging Document Source ${ids.repositoryUniqueId}`,
        endpoint: ids,
      },
      maxPerCall: Number.MAX_SAFE_INTEGER,
      action: Action.RAD69,
      responseAction: Action.RAD69Response,
      body,
      failed: (doc, reason) =>
        repositoryFailed(
          doc,
          ids.repositoryUniqueId,
          `the Imaging Document Source did not answer: ${reason}`,
        ),
    };
  }
  const c = dir.communities.find((x) => x.homeCommunityId === d.homeCommunityId);
  if (!c) return unknownCommunity(d);
  const endpoint = c.endpoints.rad75;
  if (!endpoint) return unknownCommunity(d, 'has no Cross Gateway Retrieve Imaging Document Set endpoint');
  return {
    key: `community:${c.homeCommunityId}`,
    target: { kind: 'community', location: c.homeCommunityId, label: c.name, community: c, endpoint },
    maxPerCall: c.maxDocumentsPerRequest,
    action: Action.RAD75,
    responseAction: Action.RAD75Response,
    body,
    failed: (doc, reason) => documentUnavailable(doc, c.homeCommunityId, reason),
  };
}
