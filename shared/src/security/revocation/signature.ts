/**
 * Verifies the signature of a CRL or an OCSP response: RSA PKCS#1 v1.5 and ECDSA with SHA-2, and
 * Ed25519 (RFC 5280 §4.1.1.2 algorithm identifiers). SHA-1 and anything else are refused: a
 * revocation answer we cannot verify strongly is no answer.
 */
import { verify, type KeyObject } from 'node:crypto';
import { children, oidOf, type Der } from './der';

const ALGORITHMS: Record<string, string | null> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
};

/** True when `signature` over `signed` verifies with `key` under the AlgorithmIdentifier `alg`. */
export function verifySigned(alg: Der, signed: Buffer, signature: Buffer, key: KeyObject): boolean {
  const oid = oidOf(children(alg)[0]);
  const hash = ALGORITHMS[oid];
  if (hash === undefined) return false;
  try {
    return verify(hash, signed, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
