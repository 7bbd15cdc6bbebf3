/**
 * Failure type for XUA (IHE ITI-40) assertion validation.
 *
 * The `reason` is a stable machine-readable code; the message is for logs only. Messages may name
 * elements, algorithms and IDs of the rejected assertion but never key material. Callers should map
 * every reason to the same generic SOAP fault towards the peer (wsse:InvalidSecurityToken /
 * wsse:FailedAuthentication) and keep the detail in their own logs.
 */

export type XuaFailureReason =
  /** Not well-formed, DOCTYPE/PI present, too large/deep, not a SAML 2.0 Assertion, required part missing. */
  | 'malformed'
  /** The assertion carries no ds:Signature. */
  | 'no-signature'
  /** Signature or reference digest does not verify (content altered after signing). */
  | 'bad-signature'
  /** The signature was not made with any of the trusted IdP keys (or the trusted certificate expired). */
  | 'untrusted-signer'
  /** Conditions/@NotOnOrAfter or SubjectConfirmationData/@NotOnOrAfter has passed (after skew). */
  | 'expired'
  /** Conditions/@NotBefore, SubjectConfirmationData/@NotBefore or IssueInstant lies in the future. */
  | 'not-yet-valid'
  /** AudienceRestriction does not name one of our audiences (or is missing although required). */
  | 'audience'
  /** Signature structure that could cover something other than this Assertion (signature wrapping). */
  | 'wrapping'
  /** A canonicalization, transform, digest or signature algorithm outside the allow-list (e.g. SHA-1). */
  | 'algorithm'
  /** Issuer not among the issuers the policy accepts. */
  | 'issuer'
  /** A Condition this validator cannot evaluate (SAML core 2.5.1: validity is then Indeterminate). */
  | 'conditions';

export class XuaError extends Error {
  constructor(
    readonly reason: XuaFailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'XuaError';
  }
}
