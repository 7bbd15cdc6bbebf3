/**
 * Certificate revocation lists (RFC 5280 §5): read from PEM or DER files, checked against the
 * issuing CA's key before use, asked whether a serial number is revoked.
 *
 * Only complete, direct CRLs are used: a CRL with a critical extension this module does not know
 * (delta CRLs, issuing distribution points, indirect entries) is refused as a whole, as §5.2 asks.
 */
import type { X509Certificate } from 'node:crypto';
import {
  bitStringBytes,
  certificateParts,
  children,
  context,
  DerError,
  expectTag,
  isTime,
  oidOf,
  readWhole,
  serialHex,
  Tag,
  timeOf,
  type Der,
} from './der';
import { verifySigned } from './signature';

export interface Crl {
  /** DER of the issuer Name (compared byte for byte with the CA's subject). */
  issuer: Buffer;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Revoked serial numbers (upper-case hex) → revocation date. */
  revoked: Map<string, Date>;
  /** The CRL number extension, when present (for logs). */
  number?: string;
  tbs: Buffer;
  algorithm: Der;
  signature: Buffer;
}

const KNOWN_CRL_EXTENSIONS = new Set(['2.5.29.20', '2.5.29.35']); // CRL number, authority key id
const KNOWN_ENTRY_EXTENSIONS = new Set(['2.5.29.21', '2.5.29.24']); // reason code, invalidity date

/** Extensions: OID → (critical, value); throws on an unknown critical one. */
function extensions(d: Der, known: Set<string>, what: string): Map<string, Der> {
  const out = new Map<string, Der>();
  for (const ext of children(expectTag(d, Tag.sequence, `${what} extensions`))) {
    const parts = children(ext);
    const oid = oidOf(parts[0]);
    const critical = parts[1]?.tag === 0x01 && parts[1].value[0] !== 0;
    if (critical && !known.has(oid))
      throw new DerError(`${what} has the critical extension ${oid}, not supported`);
    out.set(oid, parts[parts.length - 1]);
  }
  return out;
}

export function parseCrl(der: Buffer): Crl {
  const [tbsDer, algorithm, sig] = children(readWhole(der));
  const tbs = children(expectTag(tbsDer, Tag.sequence, 'tbsCertList'));
  let i = tbs[0]?.tag === Tag.integer ? 1 : 0;
  i++; // signature algorithm (repeated outside)
  const issuer = expectTag(tbs[i++], Tag.sequence, 'issuer').bytes;
  const thisUpdate = timeOf(tbs[i++]);
  const nextUpdate = isTime(tbs[i]) ? timeOf(tbs[i++]) : undefined;
  const revoked = new Map<string, Date>();
  if (tbs[i]?.tag === Tag.sequence) {
    for (const entry of children(tbs[i++])) {
      const e = children(entry);
      if (e[2]) extensions(e[2], KNOWN_ENTRY_EXTENSIONS, 'CRL entry');
      revoked.set(serialHex(e[0]), timeOf(e[1]));
    }
  }
  let number: string | undefined;
  if (tbs[i]?.tag === context(0)) {
    const ext = extensions(children(tbs[i])[0], KNOWN_CRL_EXTENSIONS, 'CRL');
    const n = ext.get('2.5.29.20');
    if (n) number = serialHex(readWhole(n.value));
  }
  return {
    issuer,
    thisUpdate,
    nextUpdate,
    revoked,
    number,
    tbs: tbsDer.bytes,
    algorithm: expectTag(algorithm, Tag.sequence, 'signatureAlgorithm'),
    signature: bitStringBytes(sig),
  };
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/g;

/** Every CRL of a file: PEM (one or more) or one DER CRL. */
export function readCrlFile(bytes: Buffer): Crl[] {
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN X509 CRL-----'))
    return [...text.matchAll(PEM_CRL)].map((m) => parseCrl(Buffer.from(m[1].replace(/\s+/g, ''), 'base64')));
  return [parseCrl(bytes)];
}

/** True when `ca` issued this CRL: same name, and the signature verifies with its key. */
export function issuedBy(crl: Crl, ca: X509Certificate): boolean {
  if (!certificateParts(ca.raw).subject.equals(crl.issuer)) return false;
  return verifySigned(crl.algorithm, crl.tbs, crl.signature, ca.publicKey);
}
