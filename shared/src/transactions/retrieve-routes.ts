/**
 * Where a retrieve's documents go: our own repository (ITI-43) or Imaging Document Source (RAD-69)
 * by RepositoryUniqueId, or another community's gateway (ITI-39 / RAD-75) by HomeCommunityId.
 * What cannot be routed is a RegistryError for that document, not an abort.
 */
import type { Directory, LocalEndpoint } from '../directory/types';
import type { RegistryError } from '../ebrim/status';
import {
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  nestImagingDocuments,
  type DocumentRequest,
  type ImagingDocumentRef,
} from '../xds/retrieve';
import type { Target } from '../pipeline/transaction';
import { Action } from './actions';
import {
  documentFailed,
  documentUnavailable,
  missingHome,
  unknownCommunity,
  unknownRepository,
  type Route,
} from './retrieve-plan';

type Routed<D extends DocumentRequest> = Route<D> | RegistryError;

/**
 * Initiating side (ITI-43, RAD-69): a document with our HomeCommunityId goes to our own repository or
 * Imaging Document Source, one with another community's to that community (ITI TF-2 3.43.4.1.3).
 * Without a HomeCommunityId: a document whose RepositoryUniqueId is one of ours is ours (an entry found
 * in our own registry carries no home, and the home is required only when the entry carried one:
 * ITI TF-2 3.43.4.1.2); any other cannot be routed — XDSMissingHomeCommunityId (ITI TF-2 3.43.4.1.2,
 * RAD TF-3 4.69.4.1.2: required from an XCA-I Imaging Document Consumer to the Initiating Imaging
 * Gateway), never a guess that it is ours.
 */
export function routeByHome<D extends DocumentRequest>(
  d: D,
  dir: Directory,
  ours: LocalEndpoint[],
  local: () => Routed<D>,
  remote: () => Routed<D>,
): Routed<D> {
  if (d.homeCommunityId === dir.homeCommunityId) return local();
  if (d.homeCommunityId) return remote();
  return ours.some((o) => o.repositoryUniqueId === d.repositoryUniqueId) ? local() : missingHome(d);
}

/** ITI-43 to our repository named by the document's RepositoryUniqueId. */
export function localRepositoryRoute(
  d: DocumentRequest,
  dir: Directory,
): Route<DocumentRequest> | RegistryError {
  const repo = dir.local.repositories.find((r) => r.repositoryUniqueId === d.repositoryUniqueId);
  if (!repo) return unknownRepository(d);
  const target: Target = {
    kind: 'local',
    location: repo.repositoryUniqueId,
    label: `repository ${repo.repositoryUniqueId}`,
    endpoint: repo,
  };
  return {
    key: `repository:${repo.repositoryUniqueId}`,
    target,
    maxPerCall: Number.MAX_SAFE_INTEGER,
    action: Action.ITI43,
    responseAction: Action.ITI43Response,
    body: encodeRetrieveDocumentSetRequest,
    failed: (doc, reason) => documentFailed(target, doc, `the repository did not answer: ${reason}`),
  };
}

/** RAD-69 to our Imaging Document Source, keeping the Study/Series nesting and the TS list. */
export function localImagingSourceRoute(
  d: ImagingDocumentRef,
  dir: Directory,
  transferSyntaxUids: string[],
): Route<ImagingDocumentRef> | RegistryError {
  const ids = dir.local.imagingDocumentSources.find((r) => r.repositoryUniqueId === d.repositoryUniqueId);
  if (!ids) return unknownRepository(d);
  const target: Target = {
    kind: 'local',
    location: ids.repositoryUniqueId,
    label: `Imaging Document Source ${ids.repositoryUniqueId}`,
    endpoint: ids,
  };
  return {
    key: `ids:${ids.repositoryUniqueId}`,
    target,
    maxPerCall: Number.MAX_SAFE_INTEGER,
    action: Action.RAD69,
    responseAction: Action.RAD69Response,
    body: imagingBody(transferSyntaxUids),
    failed: (doc, reason) =>
      documentFailed(target, doc, `the Imaging Document Source did not answer: ${reason}`),
  };
}

/** ITI-39 or RAD-75 to the community named by the document's HomeCommunityId. */
export function remoteCommunityRoute<D extends DocumentRequest>(
  d: D,
  dir: Directory,
  tx: 'ITI-39' | 'RAD-75',
  body: (docs: D[]) => string,
): Route<D> | RegistryError {
  const c = dir.communities.find((x) => x.homeCommunityId === d.homeCommunityId);
  if (!c) return unknownCommunity(d);
  const endpoint = tx === 'ITI-39' ? c.endpoints.iti39 : c.endpoints.rad75;
  if (!endpoint) {
    return unknownCommunity(
      d,
      `has no ${tx === 'ITI-39' ? 'Cross Gateway Retrieve' : 'Cross Gateway Retrieve Imaging Document Set'} endpoint`,
    );
  }
  return {
    key: `community:${c.homeCommunityId}`,
    target: { kind: 'community', location: c.homeCommunityId, label: c.name, community: c, endpoint },
    maxPerCall: c.maxDocumentsPerRequest,
    action: tx === 'ITI-39' ? Action.ITI39 : Action.RAD75,
    responseAction: tx === 'ITI-39' ? Action.ITI39Response : Action.RAD75Response,
    body,
    failed: (doc, reason) => documentUnavailable(doc, c.homeCommunityId, reason),
  };
}

/** The body of an RAD-69/RAD-75 sub-request for some of the documents. */
export function imagingBody(transferSyntaxUids: string[]): (docs: ImagingDocumentRef[]) => string {
  return (docs) => encodeRetrieveImagingDocumentSetRequest(nestImagingDocuments(docs, transferSyntaxUids));
}
