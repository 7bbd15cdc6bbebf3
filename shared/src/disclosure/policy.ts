/**
 * The two decisions of the disclosure rules, as pure functions of the directory's settings:
 *  - consent (R10): may a patient's data go to this community, given the privacy policies the
 *    patient acknowledged (BPPC, ITI TF-1 §19)?
 *  - document class (R9): may this community see this DocumentEntry at all?
 */
import type { CodeMatch, ConsentPolicy, DocumentPolicy } from '../directory/types';
import type { MetadataCode } from '../ebrim/registry-object';
import type { ObjectFacts } from './entries';

export interface ConsentVerdict {
  permit: boolean;
  /**
   * `deny-policy`: the patient acknowledged a policy the community's settings list in `deny`
   * (opt-out); `permit-policy`: one listed in `permit`; `default`: neither (no consent on file).
   */
  basis: 'deny-policy' | 'permit-policy' | 'default';
  /** The policy OID that decided. */
  policy?: string;
}

/**
 * A `deny` policy wins over a `permit` policy: where the patient's acknowledgements conflict, the
 * safer reading holds (the BPPC text leaves conflicts to the Patient Privacy Policy Domain).
 */
export function consentVerdict(acknowledged: readonly string[], p: ConsentPolicy): ConsentVerdict {
  const denied = acknowledged.find((oid) => p.deny.includes(oid));
  if (denied) return { permit: false, basis: 'deny-policy', policy: denied };
  const permitted = acknowledged.find((oid) => p.permit.includes(oid));
  if (permitted) return { permit: true, basis: 'permit-policy', policy: permitted };
  return { permit: p.default === 'permit', basis: 'default' };
}

export function describeVerdict(v: ConsentVerdict): string {
  if (v.basis === 'deny-policy') return `the patient acknowledged policy ${v.policy} (no sharing)`;
  if (v.basis === 'permit-policy') return `the patient acknowledged policy ${v.policy} (sharing)`;
  return v.permit ? 'no consent on file; the default permits' : 'no consent on file; the default denies';
}

export function codeMatches(c: MetadataCode | undefined, list: readonly CodeMatch[]): boolean {
  if (!c) return false;
  return list.some((m) => m.code === c.code && (m.scheme === undefined || m.scheme === c.scheme));
}

function show(c: MetadataCode | undefined): string {
  if (!c) return '(none)';
  return c.scheme ? `${c.code}^^${c.scheme}` : c.code;
}

/**
 * Why a DocumentEntry is outside what the community may see (undefined: it may see it). An entry
 * with a restricted attribute missing is outside: what cannot be shown to be allowed is not.
 */
export function documentRestriction(f: ObjectFacts, p: DocumentPolicy | undefined): string | undefined {
  if (!p || f.kind !== 'document') return undefined;
  if (p.classCodes && !codeMatches(f.classCode, p.classCodes))
    return `classCode ${show(f.classCode)} is not allowed`;
  if (p.typeCodes && !codeMatches(f.typeCode, p.typeCodes))
    return `typeCode ${show(f.typeCode)} is not allowed`;
  const allowed = p.confidentialityCodes;
  if (allowed) {
    if (f.confidentialityCodes.length === 0) return 'no confidentialityCode';
    const bad = f.confidentialityCodes.find((c) => !codeMatches(c, allowed));
    if (bad) return `confidentialityCode ${show(bad)} is not allowed`;
  }
  return undefined;
}
