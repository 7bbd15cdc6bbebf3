/**
 * OCSP (RFC 6960, profile of RFC 5019): the request for one certificate (CertID with SHA-1 name and
 * key hashes, no nonce, so answers can be cached), and the checks on a basic response: signed by
 * the issuing CA itself or by a responder certificate that CA issued for OCSP signing
 * (id-kp-OCSPSigning), for the CertID asked, current (thisUpdate ≤ now ≤ nextUpdate, with a small
 * clock skew).
 */
import { createHash, X509Certificate } from 'node:crypto';
import {
  bitStringBytes,
  certificateParts,
  children,
  context,
  DerError,
  expectTag,
  oidDer,
  oidOf,
  readWhole,
  serialHex,
  Tag,
  timeOf,
  tlv,
  type Der,
} from './der';
import { verifySigned } from './signature';

const SHA1 = '1.3.14.3.2.26';
const BASIC = '1.3.6.1.5.5.7.48.1.1';
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const SKEW_MS = 5 * 60_000;

export interface CertId {
  nameHash: Buffer;
  keyHash: Buffer;
  serial: string;
}

export function certId(cert: X509Certificate, issuer: X509Certificate): CertId {
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest();
  return {
    nameHash: sha1(certificateParts(cert.raw).issuer),
    keyHash: sha1(certificateParts(issuer.raw).publicKeyBits),
    serial: certificateParts(cert.raw).serial,
  };
}

export const certIdKey = (id: CertId) => `${id.keyHash.toString('hex')}|${id.serial}`;

export function encodeOcspRequest(id: CertId): Buffer {
  const serial = Buffer.from(id.serial.length % 2 ? `0${id.serial}` : id.serial, 'hex');
  const serialInt = serial[0] & 0x80 ? Buffer.concat([Buffer.from([0]), serial]) : serial;
  const reqCert = tlv(
    Tag.sequence,
    tlv(Tag.sequence, oidDer(SHA1), tlv(Tag.null)),
    tlv(Tag.octetString, id.nameHash),
    tlv(Tag.octetString, id.keyHash),
    tlv(Tag.integer, serialInt),
  );
  return tlv(Tag.sequence, tlv(Tag.sequence, tlv(Tag.sequence, tlv(Tag.sequence, reqCert))));
}

export type CertStatus = 'good' | 'revoked' | 'unknown';

export interface OcspAnswer {
  status: CertStatus;
  revokedAt?: Date;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export class OcspError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OcspError';
  }
}

function sameCertId(d: Der, id: CertId): boolean {
  const [alg, nameHash, keyHash, serial] = children(d);
  return (
    oidOf(children(alg)[0]) === SHA1 &&
    expectTag(nameHash, Tag.octetString, 'issuerNameHash').value.equals(id.nameHash) &&
    expectTag(keyHash, Tag.octetString, 'issuerKeyHash').value.equals(id.keyHash) &&
    serialHex(serial) === id.serial
  );
}

/** Reads and verifies an OCSP response for `id`, issued for `issuer`'s certificates. */
export function verifyOcspResponse(
  der: Buffer,
  id: CertId,
  issuer: X509Certificate,
  now = new Date(),
): OcspAnswer {
  try {
    return verifyNow(der, id, issuer, now);
  } catch (e) {
    if (e instanceof DerError) throw new OcspError(`malformed OCSP response: ${e.message}`);
    throw e;
  }
}

function verifyNow(der: Buffer, id: CertId, issuer: X509Certificate, now: Date): OcspAnswer {
  const top = children(readWhole(der));
  const status = expectTag(top[0], Tag.enumerated, 'responseStatus').value[0];
  if (status !== 0) throw new OcspError(`OCSP responder answered status ${status} (not successful)`);
  const bytes = children(expectTag(top[1], context(0), 'responseBytes'))[0];
  const [type, octets] = children(bytes);
  if (oidOf(type) !== BASIC) throw new OcspError('not a basic OCSP response');
  const [tbsDer, alg, sig, certsDer] = children(
    readWhole(expectTag(octets, Tag.octetString, 'response').value),
  );
  const tbs = children(expectTag(tbsDer, Tag.sequence, 'tbsResponseData'));
  let i = tbs[0]?.tag === context(0) ? 1 : 0;
  const responder = tbs[i++];
  i++; // producedAt
  const responses = children(expectTag(tbs[i], Tag.sequence, 'responses'));

  const signature = bitStringBytes(sig);
  const signer = [
    issuer,
    ...(certsDer ? children(children(certsDer)[0]).map((c) => new X509Certificate(c.bytes)) : []),
  ].find((c) => identifies(responder, c) && (c === issuer || delegated(c, issuer, now)));
  if (!signer) throw new OcspError('the OCSP response is not from the CA or a responder it authorised');
  if (!verifySigned(alg, tbsDer.bytes, signature, signer.publicKey))
    throw new OcspError('the OCSP response signature does not verify');

  for (const r of responses) {
    const parts = children(r);
    if (!sameCertId(parts[0], id)) continue;
    const cs = parts[1];
    const answer: OcspAnswer = {
      status: cs.tag === context(0, false) ? 'good' : cs.tag === context(1) ? 'revoked' : 'unknown',
      thisUpdate: timeOf(parts[2]),
    };
    if (answer.status === 'revoked') answer.revokedAt = timeOf(children(cs)[0]);
    const next = parts.slice(3).find((p) => p.tag === context(0));
    if (next) answer.nextUpdate = timeOf(children(next)[0]);
    if (answer.thisUpdate.getTime() > now.getTime() + SKEW_MS)
      throw new OcspError('the OCSP response is not yet valid');
    if (answer.nextUpdate && answer.nextUpdate.getTime() < now.getTime() - SKEW_MS)
      throw new OcspError('the OCSP response is out of date');
    return answer;
  }
  throw new OcspError('the OCSP response does not answer for this certificate');
}

/** ResponderID: byName [1] (the signer's subject) or byKey [2] (SHA-1 of its public key). */
function identifies(responder: Der, c: X509Certificate): boolean {
  const parts = certificateParts(c.raw);
  if (responder.tag === context(1)) return children(responder)[0].bytes.equals(parts.subject);
  if (responder.tag === context(2)) {
    const hash = createHash('sha1').update(parts.publicKeyBits).digest();
    return children(responder)[0].value.equals(hash);
  }
  return false;
}

/** A responder certificate the CA issued for OCSP signing, valid now. */
function delegated(c: X509Certificate, ca: X509Certificate, now: Date): boolean {
  try {
    return (
      c.checkIssued(ca) &&
      c.verify(ca.publicKey) &&
      (c.keyUsage ?? []).includes(OCSP_SIGNING) &&
      new Date(c.validFrom) <= now &&
      now <= new Date(c.validTo)
    );
  } catch {
    return false;
  }
}
