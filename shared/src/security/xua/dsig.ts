/**
 * XML Signature verification for a standalone SAML 2.0 Assertion (enveloped signature profile,
 * SAML core §5.4), written against the DOM that the caller then reads the claims from.
 *
 * Why not SignedXml.checkSignature(): it re-parses the XML string with its own xmldom copy and
 * finds the signed element by an ID lookup, so what was verified and what the caller reads could
 * come from two different trees. Here the digest is computed over the very Element the claims are
 * read from, and only xml-crypto's exclusive canonicalizer is reused.
 *
 * Anti-wrapping rules (all enforced before any cryptography):
 *  - exactly one ds:Signature in the whole assertion, and it is a direct child of the Assertion;
 *  - SignedInfo holds exactly one Reference and its URI is "#" + the Assertion's own ID;
 *  - no other element carries an ID/Id/id attribute with that value;
 *  - transforms are exactly enveloped-signature followed by exclusive c14n (no XPath/XSLT).
 * Because the digest is then taken over the document element itself (not over whatever an ID
 * lookup returns), the signed content and the content read are the same node.
 */

import {
  X509Certificate,
  createHash,
  createPublicKey,
  timingSafeEqual,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { ExclusiveCanonicalization } from 'xml-crypto';
import {
  NS_DS,
  NS_EXC_C14N,
  ancestorNamespaces,
  attr,
  childElements,
  descendantElements,
  isNamed,
  optionalChild,
  requiredChild,
  textContent,
} from './dom';
import { XuaError } from './errors';

export const ALG_EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const ALG_ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

interface SignatureAlgorithm {
  hash: HashName;
  keyType: 'rsa' | 'ec';
}

/** Maps, not object literals: an Algorithm attribute of "__proto__" must not resolve to anything. */
const SIGNATURE_ALGORITHMS: ReadonlyMap<string, SignatureAlgorithm> = new Map([
  ['http://www.w3.org/2000/09/xmldsig#rsa-sha1', { hash: 'sha1', keyType: 'rsa' }],
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', { hash: 'sha256', keyType: 'rsa' }],
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha384', { hash: 'sha384', keyType: 'rsa' }],
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha512', { hash: 'sha512', keyType: 'rsa' }],
  ['http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1', { hash: 'sha1', keyType: 'ec' }],
  ['http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256', { hash: 'sha256', keyType: 'ec' }],
  ['http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384', { hash: 'sha384', keyType: 'ec' }],
  ['http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512', { hash: 'sha512', keyType: 'ec' }],
]);

const DIGEST_ALGORITHMS: ReadonlyMap<string, HashName> = new Map([
  ['http://www.w3.org/2000/09/xmldsig#sha1', 'sha1'],
  ['http://www.w3.org/2001/04/xmlenc#sha256', 'sha256'],
  ['http://www.w3.org/2001/04/xmldsig-more#sha384', 'sha384'],
  ['http://www.w3.org/2001/04/xmlenc#sha512', 'sha512'],
]);

const DIGEST_LENGTH: Record<HashName, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** A trusted IdP signing certificate, pre-processed. */
export interface TrustedSigner {
  certificate: X509Certificate;
  publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo, used to recognise the key wherever it appears. */
  spki: Buffer;
  /** SHA-256 fingerprint of the certificate, colon-separated hex (as node:crypto prints it). */
  fingerprint256: string;
  subject: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const signerCache = new Map<string, TrustedSigner[]>();
const SIGNER_CACHE_MAX = 256;

function toSigner(cert: X509Certificate): TrustedSigner {
  const publicKey = cert.publicKey;
  return {
    certificate: cert,
    publicKey,
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    fingerprint256: cert.fingerprint256,
    subject: cert.subject,
  };
}

/**
 * Parses the policy's PEM strings (each may hold several certificates). A PEM that holds no parsable
 * certificate is a configuration error and throws a plain Error (not an XuaError: the peer is not
 * at fault).
 */
export function loadTrustedSigners(pems: readonly string[]): TrustedSigner[] {
  if (!Array.isArray(pems) || pems.length === 0) {
    throw new Error('XuaPolicy.trustedCertificates must list at least one PEM certificate');
  }
  const out: TrustedSigner[] = [];
  pems.forEach((pem, index) => {
    let signers = signerCache.get(pem);
    if (!signers) {
      const blocks = typeof pem === 'string' ? (pem.match(PEM_CERT) ?? []) : [];
      if (blocks.length === 0) {
        throw new Error(`XuaPolicy.trustedCertificates[${index}] contains no PEM certificate`);
      }
      try {
        signers = blocks.map((b) => toSigner(new X509Certificate(b)));
      } catch (e) {
        throw new Error(
          `XuaPolicy.trustedCertificates[${index}] is not a valid certificate: ${(e as Error).message}`,
          { cause: e },
        );
      }
      if (signerCache.size >= SIGNER_CACHE_MAX) signerCache.clear();
      signerCache.set(pem, signers);
    }
    out.push(...signers);
  });
  return out;
}

function certificateCurrent(cert: X509Certificate, now: Date): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (Number.isNaN(from) || Number.isNaN(to)) return false;
  return now.getTime() >= from && now.getTime() <= to;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (XML whitespace allowed between characters, as xs:base64Binary permits). */
export function decodeBase64Strict(text: string, what: string): Buffer {
  const compact = text.replace(/[ \t\r\n]+/g, '');
  if (compact.length === 0 || !BASE64.test(compact)) {
    throw new XuaError('malformed', `${what} is not valid base64`);
  }
  return Buffer.from(compact, 'base64');
}

export interface SignatureCheckOptions {
  trusted: readonly TrustedSigner[];
  allowSha1: boolean;
  now: Date;
  ignoreCertificateExpiry: boolean;
}

export interface SignatureCheckResult {
  signer: TrustedSigner;
  signatureAlgorithm: string;
  digestAlgorithm: string;
}

/** The single enveloped ds:Signature of the assertion, or XuaError('no-signature' | 'wrapping'). */
export function locateAssertionSignature(assertion: Element): Element {
  const signatures = descendantElements(assertion).filter((el) => isNamed(el, NS_DS, 'Signature'));
  if (signatures.length === 0) throw new XuaError('no-signature', 'assertion is not signed');
  if (signatures.length > 1) {
    throw new XuaError(
      'wrapping',
      `assertion contains ${signatures.length} ds:Signature elements, expected 1`,
    );
  }
  if (signatures[0].parentNode !== assertion) {
    throw new XuaError('wrapping', 'ds:Signature is not a direct child of the Assertion');
  }
  return signatures[0];
}

/** No element other than the Assertion may carry its ID in an ID/Id/id attribute (any namespace). */
export function assertIdUnique(assertion: Element, id: string): void {
  let count = 0;
  for (const el of descendantElements(assertion)) {
    const attrs = el.attributes;
    for (let i = 0; i < attrs.length; i++) {
      const a = attrs.item(i);
      if (!a) continue;
      const local = (a.localName ?? a.name).toLowerCase();
      if (local === 'id' && a.value.trim() === id) count++;
    }
  }
  if (count !== 1) throw new XuaError('wrapping', `ID "${id}" is carried by ${count} elements, expected 1`);
}

function prefixList(transformOrMethod: Element): string[] {
  const kids = childElements(transformOrMethod);
  if (kids.length === 0) return [];
  if (kids.length > 1 || !isNamed(kids[0], NS_EXC_C14N, 'InclusiveNamespaces')) {
    throw new XuaError('algorithm', `unexpected content in ${transformOrMethod.localName}`);
  }
  return (attr(kids[0], 'PrefixList') ?? '').split(/[ \t\r\n]+/).filter((p) => p.length > 0);
}

/**
 * enveloped-signature takes no parameters. xml-crypto signers nevertheless copy the
 * InclusiveNamespaces element into it when a prefix list is configured; such a child is
 * meaningless there and ignored. Anything else (XPath etc.) is refused.
 */
function envelopedParametersIgnorable(transform: Element): boolean {
  return childElements(transform).every((c) => c.localName === 'InclusiveNamespaces');
}

function canonicalize(
  node: Element,
  inclusiveNamespacesPrefixList: string[],
  ancestors: { prefix: string; namespaceURI: string }[],
): Buffer {
  const c14n = new ExclusiveCanonicalization();
  // xmldom 0.9 nodes satisfy the structural Node contract the canonicalizer relies on.
  const out = c14n.process(node as never, {
    inclusiveNamespacesPrefixList,
    ancestorNamespaces: ancestors,
  });
  if (typeof out !== 'string') throw new XuaError('malformed', 'canonicalization failed');
  return Buffer.from(out, 'utf8');
}

function verifyWithKey(key: KeyObject, alg: SignatureAlgorithm, data: Buffer, signature: Buffer): boolean {
  if (key.asymmetricKeyType !== alg.keyType) return false;
  try {
    if (alg.keyType === 'ec') {
      // XML-DSig ECDSA signature values are r || s (RFC 4050 / XMLDSig 1.1), not DER.
      return cryptoVerify(alg.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    }
    return cryptoVerify(alg.hash, data, key, signature);
  } catch {
    return false;
  }
}

/**
 * Keys embedded in KeyInfo. Used ONLY to explain a failure (untrusted vs. broken signature), never
 * to accept one: acceptance always goes through a key from the trusted list.
 */
function embeddedKeys(keyInfo: Element | undefined): KeyObject[] {
  if (!keyInfo) return [];
  const keys: KeyObject[] = [];
  for (const el of descendantElements(keyInfo)) {
    try {
      if (isNamed(el, NS_DS, 'X509Certificate')) {
        keys.push(new X509Certificate(decodeBase64Strict(textContent(el), 'X509Certificate')).publicKey);
      } else if (isNamed(el, NS_DS, 'RSAKeyValue')) {
        const n = decodeBase64Strict(textContent(requiredChild(el, NS_DS, 'Modulus')), 'Modulus');
        const e = decodeBase64Strict(textContent(requiredChild(el, NS_DS, 'Exponent')), 'Exponent');
        keys.push(
          createPublicKey({
            key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') },
            format: 'jwk',
          }),
        );
      }
    } catch {
      // Unusable embedded key material only matters for the error message.
    }
  }
  return keys;
}

function sameKey(a: KeyObject, spki: Buffer): boolean {
  try {
    return a.export({ type: 'spki', format: 'der' }).equals(spki);
  } catch {
    return false;
  }
}

interface ParsedSignature {
  signedInfo: Element;
  signedInfoPrefixes: string[];
  signatureAlgorithm: string;
  sigAlg: SignatureAlgorithm;
  digestAlgorithm: string;
  digestHash: HashName;
  digestValue: Buffer;
  referencePrefixes: string[];
  signatureValue: Buffer;
  keyInfo: Element | undefined;
}

function onlyChildren(el: Element, allowed: readonly string[]): void {
  for (const c of childElements(el)) {
    const local = c.localName ?? '';
    if (!isNamed(c, NS_DS, local) || !allowed.includes(local)) {
      throw new XuaError('malformed', `unexpected ${c.nodeName} in ds:${el.localName}`);
    }
  }
}

function parseSignature(signature: Element, assertionId: string, allowSha1: boolean): ParsedSignature {
  onlyChildren(signature, ['SignedInfo', 'SignatureValue', 'KeyInfo']);
  const signedInfo = requiredChild(signature, NS_DS, 'SignedInfo');
  const signatureValueEl = requiredChild(signature, NS_DS, 'SignatureValue');
  const keyInfo = optionalChild(signature, NS_DS, 'KeyInfo');

  onlyChildren(signedInfo, ['CanonicalizationMethod', 'SignatureMethod', 'Reference']);
  const references = childElements(signedInfo).filter((c) => isNamed(c, NS_DS, 'Reference'));
  if (references.length !== 1) {
    throw new XuaError('wrapping', `SignedInfo has ${references.length} References, expected exactly 1`);
  }
  const reference = references[0];
  const c14nMethod = requiredChild(signedInfo, NS_DS, 'CanonicalizationMethod');
  const sigMethod = requiredChild(signedInfo, NS_DS, 'SignatureMethod');

  if (attr(c14nMethod, 'Algorithm') !== ALG_EXC_C14N) {
    throw new XuaError('algorithm', `CanonicalizationMethod ${attr(c14nMethod, 'Algorithm')} not allowed`);
  }
  const signedInfoPrefixes = prefixList(c14nMethod);

  const signatureAlgorithm = attr(sigMethod, 'Algorithm') ?? '';
  const sigAlg = SIGNATURE_ALGORITHMS.get(signatureAlgorithm);
  if (!sigAlg || childElements(sigMethod).length > 0) {
    throw new XuaError('algorithm', `SignatureMethod ${signatureAlgorithm} not allowed`);
  }
  if (sigAlg.hash === 'sha1' && !allowSha1) {
    throw new XuaError('algorithm', `SignatureMethod ${signatureAlgorithm} uses SHA-1, refused by policy`);
  }

  // Reference: must point at this assertion by its ID — an empty URI ("whole document") would have
  // meant the whole SOAP envelope when the IdP signed, and any other ID points elsewhere.
  const uri = reference.getAttribute('URI');
  if (uri !== `#${assertionId}`) {
    throw new XuaError(
      'wrapping',
      `Reference URI "${uri ?? ''}" does not point at Assertion ID "${assertionId}"`,
    );
  }
  onlyChildren(reference, ['Transforms', 'DigestMethod', 'DigestValue']);
  const transforms = childElements(requiredChild(reference, NS_DS, 'Transforms'));
  if (
    transforms.length !== 2 ||
    !transforms.every((t) => isNamed(t, NS_DS, 'Transform')) ||
    attr(transforms[0], 'Algorithm') !== ALG_ENVELOPED ||
    !envelopedParametersIgnorable(transforms[0]) ||
    attr(transforms[1], 'Algorithm') !== ALG_EXC_C14N
  ) {
    const list = transforms.map((t) => attr(t, 'Algorithm') ?? t.nodeName).join(', ');
    throw new XuaError('algorithm', `Transforms must be enveloped-signature then exc-c14n, got [${list}]`);
  }
  const referencePrefixes = prefixList(transforms[1]);

  const digestMethod = requiredChild(reference, NS_DS, 'DigestMethod');
  const digestAlgorithm = attr(digestMethod, 'Algorithm') ?? '';
  const digestHash = DIGEST_ALGORITHMS.get(digestAlgorithm);
  if (!digestHash) throw new XuaError('algorithm', `DigestMethod ${digestAlgorithm} not allowed`);
  if (digestHash === 'sha1' && !allowSha1) {
    throw new XuaError('algorithm', `DigestMethod ${digestAlgorithm} is SHA-1, refused by policy`);
  }
  const digestValue = decodeBase64Strict(
    textContent(requiredChild(reference, NS_DS, 'DigestValue')),
    'DigestValue',
  );
  if (digestValue.length !== DIGEST_LENGTH[digestHash]) {
    throw new XuaError('malformed', 'DigestValue has the wrong length for its DigestMethod');
  }
  const signatureValue = decodeBase64Strict(textContent(signatureValueEl), 'SignatureValue');

  return {
    signedInfo,
    signedInfoPrefixes,
    signatureAlgorithm,
    sigAlg,
    digestAlgorithm,
    digestHash,
    digestValue,
    referencePrefixes,
    signatureValue,
    keyInfo,
  };
}

/**
 * Verifies the enveloped signature of `assertion` (the document element) against the trusted
 * signers. Returns the signer; throws XuaError otherwise.
 */
export function verifyAssertionSignature(
  assertion: Element,
  assertionId: string,
  options: SignatureCheckOptions,
): SignatureCheckResult {
  const signature = locateAssertionSignature(assertion);
  assertIdUnique(assertion, assertionId);
  const sig = parseSignature(signature, assertionId, options.allowSha1);

  // 1. SignedInfo is signed by a trusted key? (KeyInfo plays no part in this decision.)
  const signedInfoCanon = canonicalize(
    sig.signedInfo.cloneNode(true) as Element,
    sig.signedInfoPrefixes,
    ancestorNamespaces(sig.signedInfo),
  );
  const current = options.ignoreCertificateExpiry
    ? options.trusted
    : options.trusted.filter((t) => certificateCurrent(t.certificate, options.now));
  const signer = current.find((t) =>
    verifyWithKey(t.publicKey, sig.sigAlg, signedInfoCanon, sig.signatureValue),
  );
  if (!signer) throw classifyFailure(sig, signedInfoCanon, options, current);

  // 2. The Reference digest matches the assertion as it is now (enveloped-signature, exc-c14n).
  const clone = assertion.cloneNode(true) as Element;
  const position = Array.prototype.indexOf.call(assertion.childNodes, signature) as number;
  const clonedSignature = clone.childNodes.item(position);
  if (!clonedSignature) throw new XuaError('malformed', 'cannot apply enveloped-signature transform');
  clone.removeChild(clonedSignature);
  const canon = canonicalize(clone, sig.referencePrefixes, ancestorNamespaces(assertion));
  const digest = createHash(sig.digestHash).update(canon).digest();
  if (digest.length !== sig.digestValue.length || !timingSafeEqual(digest, sig.digestValue)) {
    throw new XuaError('bad-signature', 'assertion content does not match the signed digest');
  }
  return { signer, signatureAlgorithm: sig.signatureAlgorithm, digestAlgorithm: sig.digestAlgorithm };
}

function classifyFailure(
  sig: ParsedSignature,
  signedInfoCanon: Buffer,
  options: SignatureCheckOptions,
  current: readonly TrustedSigner[],
): XuaError {
  const expired = options.trusted.filter((t) => !current.includes(t));
  const byExpired = expired.find((t) =>
    verifyWithKey(t.publicKey, sig.sigAlg, signedInfoCanon, sig.signatureValue),
  );
  if (byExpired) {
    return new XuaError(
      'untrusted-signer',
      `signed by trusted certificate ${byExpired.subject} outside its validity period (${byExpired.certificate.validFrom} – ${byExpired.certificate.validTo})`,
    );
  }
  const embedded = embeddedKeys(sig.keyInfo);
  if (embedded.some((k) => verifyWithKey(k, sig.sigAlg, signedInfoCanon, sig.signatureValue))) {
    return new XuaError('untrusted-signer', 'assertion is signed by a key that is not trusted');
  }
  if (embedded.some((k) => options.trusted.some((t) => sameKey(k, t.spki)))) {
    return new XuaError('bad-signature', 'signature value does not verify with the trusted signing key');
  }
  return new XuaError('untrusted-signer', 'signature does not verify with any trusted certificate');
}
