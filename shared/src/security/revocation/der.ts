/**
 * The little DER (ITU-T X.690) that CRLs (RFC 5280 §5) and OCSP (RFC 6960) need: reading
 * tag-length-value elements with bounds checks, and writing the few an OCSP request holds.
 * Input comes from peers and files: anything malformed throws DerError, never reads past the end.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export interface Der {
  tag: number;
  /** The whole element (tag, length, value). */
  bytes: Buffer;
  value: Buffer;
}

export const Tag = {
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  enumerated: 0x0a,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Context-specific tag [n], constructed (EXPLICIT or constructed IMPLICIT) or primitive. */
export const context = (n: number, constructed = true) => (constructed ? 0xa0 : 0x80) | n;

/** The element at `offset` of `buf`. */
export function readDer(buf: Buffer, offset = 0): Der {
  if (offset + 2 > buf.length) throw new DerError('truncated element');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used here');
  let len = buf[offset + 1];
  let head = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported length');
    if (offset + 2 + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i];
    head += n;
  }
  const end = offset + head + len;
  if (end > buf.length) throw new DerError('element runs past the end');
  return { tag, bytes: buf.subarray(offset, end), value: buf.subarray(offset + head, end) };
}

/** One complete element: nothing may follow it. */
export function readWhole(buf: Buffer): Der {
  const d = readDer(buf);
  if (d.bytes.length !== buf.length) throw new DerError('trailing bytes');
  return d;
}

/** The elements inside a constructed element. */
export function children(d: Der): Der[] {
  if (!(d.tag & 0x20)) throw new DerError(`tag 0x${d.tag.toString(16)} is not constructed`);
  const out: Der[] = [];
  for (let off = 0; off < d.value.length;) {
    const c = readDer(d.value, off);
    out.push(c);
    off += c.bytes.length;
  }
  return out;
}

export function expectTag(d: Der | undefined, tag: number, what: string): Der {
  if (!d || d.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}`);
  return d;
}

export function oidOf(d: Der): string {
  expectTag(d, Tag.oid, 'OID');
  const v = d.value;
  if (v.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    n = n * 128 + (v[i] & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER) throw new DerError('OID arc too large');
    if (!(v[i] & 0x80)) {
      if (parts.length === 0) parts.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
      else parts.push(n);
      n = 0;
    }
  }
  return parts.join('.');
}

/** An INTEGER as upper-case hex without leading zero bytes (certificate serial numbers). */
export function serialHex(d: Der): string {
  expectTag(d, Tag.integer, 'INTEGER');
  let v = d.value;
  while (v.length > 1 && v[0] === 0) v = v.subarray(1);
  return v.toString('hex').toUpperCase();
}

export function timeOf(d: Der): Date {
  const s = d.value.toString('latin1');
  let m: RegExpExecArray | null;
  if (d.tag === Tag.utcTime && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const y = Number(m[1]);
    return new Date(Date.UTC(y < 50 ? 2000 + y : 1900 + y, +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  }
  if (d.tag === Tag.generalizedTime && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.\d+)?Z$/.exec(s)))
    return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  throw new DerError(`not a UTC time: ${s.slice(0, 20)}`);
}

export function isTime(d: Der | undefined): boolean {
  return d !== undefined && (d.tag === Tag.utcTime || d.tag === Tag.generalizedTime);
}

/** The bits of a BIT STRING with no unused bits (signatures, keys). */
export function bitStringBytes(d: Der): Buffer {
  expectTag(d, Tag.bitString, 'BIT STRING');
  if (d.value.length === 0 || d.value[0] !== 0) throw new DerError('BIT STRING with unused bits');
  return d.value.subarray(1);
}

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from([0x80 | out.length, ...out]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const value = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(value.length), value]);
}

export function oidDer(oid: string): Buffer {
  const arcs = oid.split('.').map(Number);
  const bytes: number[] = [];
  const push = (n: number) => {
    const out = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v & 0x7f) | 0x80);
    bytes.push(...out);
  };
  push(arcs[0] * 40 + arcs[1]);
  for (const a of arcs.slice(2)) push(a);
  return tlv(Tag.oid, Buffer.from(bytes));
}

/** The parts of an X.509 certificate the revocation checks need, from its DER. */
export function certificateParts(der: Buffer): {
  issuer: Buffer;
  subject: Buffer;
  serial: string;
  publicKeyBits: Buffer;
} {
  const tbs = children(children(readWhole(der))[0]);
  let i = tbs[0]?.tag === context(0) ? 1 : 0; // [0] version
  const serial = serialHex(tbs[i++]);
  i++; // signature algorithm
  const issuer = expectTag(tbs[i++], Tag.sequence, 'issuer').bytes;
  i++; // validity
  const subject = expectTag(tbs[i++], Tag.sequence, 'subject').bytes;
  const spki = children(expectTag(tbs[i], Tag.sequence, 'subjectPublicKeyInfo'));
  return { issuer, subject, serial, publicKeyBits: bitStringBytes(spki[1]) };
}
