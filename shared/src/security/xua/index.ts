/**
 * IHE XUA (ITI-40) assertion validation: a SAML 2.0 Assertion from a wsse:Security header is
 * accepted only when it is signed by one of the configured IdP certificates, structurally unable
 * to hide a signature-wrapping attack, currently valid and addressed to us.
 *
 * Input is ONE standalone `<saml2:Assertion>` element (the gateway slices it out of wsse:Security
 * and redeclares the inherited namespace bindings on its start tag; `findAssertions` does exactly
 * that). What is checked, in order:
 *
 *  1. XML: strict parse, no DOCTYPE/entities/PIs, bounded size and depth            → 'malformed'
 *  2. Shape: document element is saml2:Assertion, Version="2.0", ID is an NCName,
 *     IssueInstant present                                                           → 'malformed'
 *  3. Signature placement: exactly one ds:Signature in the whole assertion, a direct
 *     child of the Assertion; the Assertion's ID appears on no other element;
 *     exactly one Reference, URI = "#" + Assertion/@ID                               → 'no-signature' | 'wrapping'
 *  4. Algorithms: c14n = exc-c14n; transforms = [enveloped-signature, exc-c14n];
 *     RSA / ECDSA with SHA-256/384/512, digest SHA-256/384/512; SHA-1 only with
 *     `allowSha1`; never HMAC, XPath, XSLT                                           → 'algorithm'
 *  5. SignatureValue over SignedInfo verifies with a trusted certificate's key (a
 *     certificate embedded in KeyInfo is never trusted for being there — it is only
 *     used to tell "unknown signer" from "broken signature" in the error)            → 'untrusted-signer' | 'bad-signature'
 *  6. Reference digest over the Assertion itself (enveloped, exc-c14n) matches       → 'bad-signature'
 *  7. Issuer present (and in `issuers` if configured), Subject/NameID present        → 'malformed' | 'issuer'
 *  8. Time: IssueInstant, Conditions/@NotBefore, @NotOnOrAfter (required) and every
 *     SubjectConfirmationData/@NotBefore, @NotOnOrAfter, all with `clockSkewMs`       → 'not-yet-valid' | 'expired'
 *  9. Conditions: every AudienceRestriction must name one of `audiences`; a policy
 *     with audiences rejects an assertion without AudienceRestriction; unknown
 *     Condition types are refused (SAML core 2.5.1.1: validity Indeterminate)        → 'audience' | 'conditions'
 *
 * Wrapping is prevented structurally: the digest is computed over the document element — the very
 * node all claims are then read from — and the single permitted Reference must name that element's
 * ID, so no second (unsigned) Assertion, moved signature or ID-collision can make "the element that
 * was verified" and "the element that was read" differ. Claim text is read as the concatenation of
 * all text nodes (comments skipped), exactly what the canonical form signed.
 *
 * SHA-1 is refused by default (`allowSha1: false`): SHA-1 collisions are practical (SHAttered 2017,
 * chosen-prefix "SHA-1 is a Shambles" 2020), NIST SP 800-131A disallows it for signature
 * generation, and XML-DSig 1.1 deprecates it. An assertion signed over a SHA-1 digest can be
 * exchanged for a colliding document by anyone who can influence what the IdP signs. Note that
 * several deployed IdPs (every captured sample we have seen) still sign with rsa-sha1; enabling
 * `allowSha1` for such a peer is an explicit, per-policy risk decision.
 *
 * Not checked here (caller's business): holder-of-key proof (for `holder-of-key` confirmation the
 * WS-Security message signature must be made with the key in SubjectConfirmationData), replay of
 * OneTimeUse assertions (`oneTimeUse` is reported), SubjectConfirmationData/@Recipient (reported),
 * certificate revocation of the IdP certificate.
 */

import type { Element } from '@xmldom/xmldom';
import { readClaims, type CodedValue, type RawClaims } from './claims';
import { parseXmlStrict } from './dom';
import { loadTrustedSigners, verifyAssertionSignature } from './dsig';
import { XuaError } from './errors';

export { XuaError, type XuaFailureReason } from './errors';
export { findAssertions } from './slice';
export { XUA_ATTRIBUTE, type CodedValue } from './claims';

export interface XuaPolicy {
  /** PEM certificates of the IdP(s)/STS whose signatures are accepted (a PEM may hold several). */
  trustedCertificates: string[];
  /**
   * Accepted AudienceRestriction/Audience values (exact match). If the assertion has an
   * AudienceRestriction, each restriction must name one of these; if this list is non-empty an
   * assertion without AudienceRestriction is rejected. An empty list accepts only assertions
   * without any AudienceRestriction.
   */
  audiences: string[];
  /** Tolerated clock difference in both directions, e.g. 60_000. */
  clockSkewMs: number;
  /** Clock (tests, replay of captured traffic). Defaults to the system clock. */
  now?: () => Date;
  /**
   * Accept rsa-sha1 / ecdsa-sha1 signatures and SHA-1 digests. Default false — see the module
   * comment for why SHA-1 is refused.
   */
  allowSha1?: boolean;
  /** If set, Issuer must equal one of these (binds the trusted keys to expected IdP names). */
  issuers?: string[];
  /**
   * By default a trusted certificate is only used inside its notBefore/notAfter window (checked at
   * `now`). Set true to use the configured certificates as bare keys regardless of dates, as SAML
   * metadata deployments sometimes do.
   */
  ignoreCertificateExpiry?: boolean;
}

/** Claims common to verified and unverified reads. */
export interface XuaClaims {
  /** Assertion/@ID. */
  id: string;
  issuer: string;
  issueInstant: Date;
  /** Subject/NameID text. */
  subjectNameId: string;
  subjectNameIdFormat?: string;
  /** subject-id attribute (xspa 1.0 or xacml 1.0 name): the human requestor's name. */
  subjectId?: string;
  /** urn:oasis:names:tc:xacml:2.0:subject:role values (hl7:Role / hl7:CE). */
  roles: CodedValue[];
  organization?: string;
  organizationId?: string;
  /** urn:ihe:iti:xca:2010:homeCommunityId (or the NHIN alias urn:nhin:names:saml:homeCommunityId). */
  homeCommunityId?: string;
  /** urn:oasis:names:tc:xspa:1.0:subject:purposeofuse values; empty when absent. */
  purposeOfUse: CodedValue[];
  /** urn:oasis:names:tc:xacml:2.0:resource:resource-id (CX patient id). */
  patientId?: string;
  /**
   * When the assertion stops being usable: the earliest of Conditions/@NotOnOrAfter and every
   * SubjectConfirmationData/@NotOnOrAfter.
   */
  notOnOrAfter: Date;
  notBefore?: Date;
  /** Audiences of all AudienceRestrictions (flattened). */
  audiences: string[];
  /** SubjectConfirmation/@Method values (bearer, holder-of-key, sender-vouches). */
  subjectConfirmationMethods: string[];
  /** SubjectConfirmationData/@Recipient values, if any. */
  recipients: string[];
  /** Conditions contain OneTimeUse: the caller must enforce replay protection or refuse. */
  oneTimeUse: boolean;
  /** Every attribute: Name → trimmed text values (coded values: their code). */
  attributes: Readonly<Record<string, readonly string[]>>;
}

/** Result of validateAssertion: every field has passed the checks listed above. */
export interface ValidatedAssertion extends XuaClaims {
  readonly verified: true;
  /** The trusted certificate that verified the signature. */
  signer: { subject: string; fingerprint256: string };
  signatureAlgorithm: string;
  digestAlgorithm: string;
}

/**
 * Result of readAssertionUnverified: NOTHING here is authenticated. For logging and diagnostics only.
 * `verified: false` keeps it from being passed where a ValidatedAssertion is expected.
 */
export type UnverifiedAssertion = Partial<Omit<XuaClaims, 'roles' | 'purposeOfUse' | 'audiences'>> & {
  readonly verified: false;
  roles: CodedValue[];
  purposeOfUse: CodedValue[];
  audiences: string[];
  subjectConfirmationMethods: string[];
  recipients: string[];
  attributes: Readonly<Record<string, readonly string[]>>;
};

const NCNAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

function checkPolicy(policy: XuaPolicy): void {
  if (!policy || typeof policy !== 'object') throw new Error('XuaPolicy is required');
  if (!Number.isFinite(policy.clockSkewMs) || policy.clockSkewMs < 0) {
    throw new Error('XuaPolicy.clockSkewMs must be a finite number >= 0');
  }
  if (!Array.isArray(policy.audiences)) throw new Error('XuaPolicy.audiences must be an array');
}

function parseAssertion(assertionXml: string): Element {
  const doc = parseXmlStrict(assertionXml);
  const root = doc.documentElement;
  if (
    !root ||
    root.localName !== 'Assertion' ||
    root.namespaceURI !== 'urn:oasis:names:tc:SAML:2.0:assertion'
  ) {
    throw new XuaError(
      'malformed',
      `document element is ${root?.nodeName ?? 'missing'}, expected saml2:Assertion`,
    );
  }
  return root;
}

function flattenAudiences(claims: RawClaims): string[] {
  return [...new Set((claims.conditions?.audienceRestrictions ?? []).flat())];
}

function earliest(dates: (Date | undefined)[]): Date | undefined {
  let min: Date | undefined;
  for (const d of dates) if (d && (!min || d.getTime() < min.getTime())) min = d;
  return min;
}

function latest(dates: (Date | undefined)[]): Date | undefined {
  let max: Date | undefined;
  for (const d of dates) if (d && (!max || d.getTime() > max.getTime())) max = d;
  return max;
}

/**
 * Validates one standalone SAML 2.0 Assertion against the policy. Returns the authenticated claims
 * or throws XuaError (peer's fault, see `reason`) / Error (invalid policy).
 */
export function validateAssertion(assertionXml: string, policy: XuaPolicy): ValidatedAssertion {
  checkPolicy(policy);
  const trusted = loadTrustedSigners(policy.trustedCertificates);
  const now = policy.now ? policy.now() : new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new Error('XuaPolicy.now() returned no valid Date');
  const skew = policy.clockSkewMs;

  const root = parseAssertion(assertionXml);
  const version = root.getAttribute('Version');
  if (version !== '2.0') throw new XuaError('malformed', `Assertion Version "${version ?? ''}" is not 2.0`);
  const id = root.getAttribute('ID') ?? '';
  if (!NCNAME.test(id)) throw new XuaError('malformed', 'Assertion ID missing or not an NCName');
  if (!root.getAttribute('IssueInstant')) throw new XuaError('malformed', 'Assertion has no IssueInstant');

  const sig = verifyAssertionSignature(root, id, {
    trusted,
    allowSha1: policy.allowSha1 === true,
    now,
    ignoreCertificateExpiry: policy.ignoreCertificateExpiry === true,
  });

  // From here on the content is authenticated; read it strictly.
  const claims = readClaims(root, true);
  if (!claims.issuer) throw new XuaError('malformed', 'Assertion has no Issuer');
  if (policy.issuers && !policy.issuers.includes(claims.issuer)) {
    throw new XuaError('issuer', `Issuer "${claims.issuer}" is not accepted`);
  }
  if (!claims.subjectNameId) throw new XuaError('malformed', 'Assertion has no Subject/NameID');
  if (!claims.issueInstant) throw new XuaError('malformed', 'Assertion has no IssueInstant');
  const conditions = claims.conditions;
  if (!conditions?.notOnOrAfter) {
    throw new XuaError('malformed', 'Assertion has no Conditions/@NotOnOrAfter (unbounded lifetime)');
  }

  // Time window.
  const t = now.getTime();
  const notBefore = latest([conditions.notBefore, ...claims.subjectConfirmations.map((s) => s.notBefore)]);
  const notOnOrAfter = earliest([
    conditions.notOnOrAfter,
    ...claims.subjectConfirmations.map((s) => s.notOnOrAfter),
  ])!;
  if (claims.issueInstant.getTime() > t + skew) {
    throw new XuaError('not-yet-valid', `IssueInstant ${claims.issueInstant.toISOString()} is in the future`);
  }
  if (notBefore && notBefore.getTime() > t + skew) {
    throw new XuaError('not-yet-valid', `assertion not valid before ${notBefore.toISOString()}`);
  }
  if (notOnOrAfter.getTime() <= t - skew) {
    throw new XuaError('expired', `assertion expired at ${notOnOrAfter.toISOString()}`);
  }

  // Conditions.
  if (conditions.unknown.length > 0) {
    throw new XuaError('conditions', `unsupported condition(s): ${conditions.unknown.join(', ')}`);
  }
  const restrictions = conditions.audienceRestrictions;
  if (restrictions.length === 0 && policy.audiences.length > 0) {
    throw new XuaError('audience', 'assertion has no AudienceRestriction but one is required');
  }
  for (const restriction of restrictions) {
    if (!restriction.some((a) => policy.audiences.includes(a))) {
      throw new XuaError('audience', `assertion is for audience(s) ${restriction.join(', ') || '(none)'}`);
    }
  }

  const result: ValidatedAssertion = {
    verified: true,
    id,
    issuer: claims.issuer,
    issueInstant: claims.issueInstant,
    subjectNameId: claims.subjectNameId,
    roles: claims.roles,
    purposeOfUse: claims.purposeOfUse,
    notOnOrAfter,
    audiences: flattenAudiences(claims),
    subjectConfirmationMethods: claims.subjectConfirmations.map((s) => s.method).filter((m) => m.length > 0),
    recipients: claims.subjectConfirmations.flatMap((s) => (s.recipient ? [s.recipient] : [])),
    oneTimeUse: conditions.oneTimeUse,
    attributes: claims.attributes,
    signer: { subject: sig.signer.subject, fingerprint256: sig.signer.fingerprint256 },
    signatureAlgorithm: sig.signatureAlgorithm,
    digestAlgorithm: sig.digestAlgorithm,
  };
  copyOptional(claims, result);
  if (notBefore) result.notBefore = notBefore;
  return result;
}

function copyOptional(claims: RawClaims, into: Partial<XuaClaims>): void {
  if (claims.subjectNameIdFormat) into.subjectNameIdFormat = claims.subjectNameIdFormat;
  if (claims.subjectId) into.subjectId = claims.subjectId;
  if (claims.organization) into.organization = claims.organization;
  if (claims.organizationId) into.organizationId = claims.organizationId;
  if (claims.homeCommunityId) into.homeCommunityId = claims.homeCommunityId;
  if (claims.patientId) into.patientId = claims.patientId;
}

/**
 * Reads the claims WITHOUT verifying anything (no signature, trust, time or audience check).
 * FOR LOGGING / DIAGNOSTICS ONLY — never base an access decision on the result. Throws
 * XuaError('malformed') only when the input is not a parsable SAML 2.0 Assertion.
 */
export function readAssertionUnverified(assertionXml: string): UnverifiedAssertion {
  const root = parseAssertion(assertionXml);
  const claims = readClaims(root, false);
  const out: UnverifiedAssertion = {
    verified: false,
    roles: claims.roles,
    purposeOfUse: claims.purposeOfUse,
    audiences: flattenAudiences(claims),
    subjectConfirmationMethods: claims.subjectConfirmations.map((s) => s.method).filter((m) => m.length > 0),
    recipients: claims.subjectConfirmations.flatMap((s) => (s.recipient ? [s.recipient] : [])),
    attributes: claims.attributes,
  };
  if (claims.id) out.id = claims.id;
  if (claims.issuer) out.issuer = claims.issuer;
  if (claims.issueInstant) out.issueInstant = claims.issueInstant;
  if (claims.subjectNameId) out.subjectNameId = claims.subjectNameId;
  copyOptional(claims, out);
  const notOnOrAfter = earliest([
    claims.conditions?.notOnOrAfter,
    ...claims.subjectConfirmations.map((s) => s.notOnOrAfter),
  ]);
  if (notOnOrAfter) out.notOnOrAfter = notOnOrAfter;
  const notBefore = latest([
    claims.conditions?.notBefore,
    ...claims.subjectConfirmations.map((s) => s.notBefore),
  ]);
  if (notBefore) out.notBefore = notBefore;
  if (claims.conditions) out.oneTimeUse = claims.conditions.oneTimeUse;
  return out;
}
