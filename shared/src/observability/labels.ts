/**
 * Metric and span label values. Every one comes from a bounded set: transaction names, the
 * directory's homeCommunityIds (or "local"), CallFailure kinds and the XDS error codes this product
 * knows. Never a patient id, a document id or free text.
 */
import { ErrorCode } from '../ebrim/error-codes';
import type { Caller, Target } from '../pipeline/transaction';
import { Action } from '../transactions/actions';

const TX_OF_ACTION: Record<string, string> = {
  [Action.ITI18]: 'ITI-18',
  [Action.ITI38]: 'ITI-38',
  [Action.ITI39]: 'ITI-39',
  [Action.ITI43]: 'ITI-43',
  [Action.RAD69]: 'RAD-69',
  [Action.RAD75]: 'RAD-75',
  [Action.ITI55]: 'ITI-55',
  [Action.ITI47]: 'ITI-47',
};

/** The transaction a sub-request is, from its wsa:Action. */
export function transactionOfAction(action: string): string {
  return TX_OF_ACTION[action] ?? 'other';
}

/** A remote community by its homeCommunityId (from the directory); our own actors as "local". */
export function communityLabel(target: Target): string {
  return target.kind === 'community' ? target.location : 'local';
}

/**
 * Who called: on the responding side the community the caller's certificate maps to ("unknown"
 * when none does); on the initiating side always "local" (its callers are our own consumers).
 */
export function peerLabel(caller: Caller, role: 'initiating' | 'responding'): string {
  if (role === 'initiating') return 'local';
  return caller.community?.homeCommunityId ?? 'unknown';
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** An XDS error code, or "other" for anything a peer invented. */
export function errorCodeLabel(code: string): string {
  return KNOWN_CODES.has(code) ? code : 'other';
}
