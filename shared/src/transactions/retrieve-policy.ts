import type { Ctx } from '../pipeline/transaction';
import type { DocumentRequest } from '../xds/retrieve';
import { documentFailed } from './retrieve-plan';
import type { RetrievePolicy } from './retrieve';
import type { Verification } from './verify';

type Check = (requested: DocumentRequest) => Verification | undefined;

/**
 * Responding side (ITI-39, RAD-75): every DocumentResponse carries our HomeCommunityId; a document
 * that cannot be delivered is an XDSRepositoryError naming it.
 */
export function respondingPolicy(ctx: Ctx, verification: Check = () => undefined): RetrievePolicy {
  const own = ctx.gateway.directory.homeCommunityId;
  return {
    home: () => own,
    verification: (_t, r) => verification(r),
    documentError: documentFailed,
    lookaheadBytes: ctx.gateway.limits.lookaheadBytes,
  };
}

/**
 * Initiating side (ITI-43, RAD-69): our own documents carry our HomeCommunityId — none when the request
 * gave none (ITI TF-2 3.43.4.2.2: the same as in the request, absent if absent); a remote one keeps the
 * home its community gave (or the community asked, when it gave none — reported by the merge).
 */
export function initiatingPolicy(ctx: Ctx, verification: Check = () => undefined): RetrievePolicy {
  const own = ctx.gateway.directory.homeCommunityId;
  return {
    home: (t, d, r) =>
      t.kind === 'local' ? (r.homeCommunityId ? own : undefined) : (d.homeCommunityId ?? t.location),
    verification: (_t, r) => verification(r),
    documentError: documentFailed,
    lookaheadBytes: ctx.gateway.limits.lookaheadBytes,
  };
}

/** RAD-69/RAD-75: every instance must be the SOP Instance asked for, in a transfer syntax asked for. */
export function dicomCheck(transferSyntaxUids: string[]): Check {
  return (r) => ({ kind: 'dicom', sopInstanceUid: r.documentUniqueId, transferSyntaxUids });
}
