/**
 * CRL and OCSP reading and checking (security/revocation/) against what openssl makes: the CRLs
 * and responses of a test CA, their refusal when they are not the CA's, not for the certificate,
 * out of date, malformed or carry critical extensions we do not know; and the checker's decisions.
 */
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger, noopAuditSink } from '@xcai/shared';
import {
  certId,
  encodeOcspRequest,
  issuedBy,
  OcspError,
  readCrlFile,
  RevocationChecker,
  verifyOcspResponse,
} from '@xcai/shared/src/security/revocation';
import { DerError, readDer } from '@xcai/shared/src/security/revocation/der';
import { inHours, makeRevocationPki, type RevocationPki } from '../support/revocation';

let pki: RevocationPki;
let other: RevocationPki;
const cert = (p: RevocationPki, n: string) => new X509Certificate(readFileSync(p.cert(n)));
const caOf = (p: RevocationPki) => new X509Certificate(readFileSync(p.ca));

beforeAll(() => {
  pki = makeRevocationPki(['good', 'bad'], 'rev-unit');
  other = makeRevocationPki(['good'], 'rev-unit-other');
  pki.revoke('bad');
});

afterAll(() => {
  pki?.remove();
  other?.remove();
});

/** An OCSP response from the test CA's database for one certificate (openssl ocsp, one request). */
function ocspResponse(p: RevocationPki, name: string, nmin = 5): Buffer {
  const req = join(p.dir, `${name}.ocsp-req`);
  const resp = join(p.dir, `${name}.ocsp-resp`);
  writeFileSync(req, encodeOcspRequest(certId(cert(p, name), caOf(p))));
  const index = execFileSync('find', [p.dir, '-name', 'index.txt'], { encoding: 'utf8' }).trim();
  execFileSync('openssl', [
    'ocsp',
    '-index',
    index,
    '-CA',
    p.ca,
    '-rsigner',
    p.ca,
    '-rkey',
    join(p.dir, 'ca.key'),
    '-reqin',
    req,
    '-respout',
    resp,
    '-nmin',
    String(nmin),
  ]);
  return readFileSync(resp);
}

describe('CRLs', () => {
  it('reads PEM and DER CRLs of the CA: dates, revoked serials, signature', () => {
    for (const der of [false, true]) {
      const [crl] = readCrlFile(readFileSync(pki.writeCrl(join(pki.dir, `c.${der}`), { der })));
      expect(crl.nextUpdate!.getTime()).toBeGreaterThan(Date.now());
      expect([...crl.revoked.keys()]).toEqual([cert(pki, 'bad').serialNumber.toUpperCase()]);
      expect(issuedBy(crl, caOf(pki))).toBe(true);
      expect(issuedBy(crl, caOf(other))).toBe(false);
    }
  });

  it('refuses a CRL with a critical extension it does not know, and malformed ones', () => {
    const idp = pki.writeCrl(join(pki.dir, 'idp.crl'), {
      extensions:
        'issuingDistributionPoint = critical,@idp\n[idp]\nfullname = URI:http://example.invalid/x.crl',
    });
    expect(() => readCrlFile(readFileSync(idp))).toThrow(/critical extension 2\.5\.29\.28/);
    const good = readFileSync(pki.writeCrl(join(pki.dir, 'd.crl'), { der: true }));
    for (const bad of [
      good.subarray(0, good.length - 3),
      Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
      Buffer.alloc(0),
    ])
      expect(() => readCrlFile(bad)).toThrow(DerError);
    // A changed byte in the signature: still a CRL, but not the CA's.
    const tampered = Buffer.from(good);
    tampered[tampered.length - 5] ^= 0x01;
    expect(issuedBy(readCrlFile(tampered)[0], caOf(pki))).toBe(false);
  });

  it('never reads past the end of a truncated element', () => {
    expect(() => readDer(Buffer.from([0x30, 0x05, 0x02, 0x01]))).toThrow(/past the end/);
    expect(() => readDer(Buffer.from([0x30]))).toThrow(/truncated/);
  });
});

describe('OCSP', () => {
  it('asks as openssl asks, and reads good and revoked answers of the CA', () => {
    const id = certId(cert(pki, 'good'), caOf(pki));
    const theirs = join(pki.dir, 'theirs.req');
    execFileSync('openssl', [
      'ocsp',
      '-issuer',
      pki.ca,
      '-cert',
      pki.cert('good'),
      '-no_nonce',
      '-reqout',
      theirs,
    ]);
    expect(encodeOcspRequest(id).equals(readFileSync(theirs))).toBe(true);
    const good = verifyOcspResponse(ocspResponse(pki, 'good'), id, caOf(pki));
    expect(good.status).toBe('good');
    expect(good.nextUpdate!.getTime()).toBeGreaterThan(Date.now());
    const bad = verifyOcspResponse(ocspResponse(pki, 'bad'), certId(cert(pki, 'bad'), caOf(pki)), caOf(pki));
    expect(bad.status).toBe('revoked');
    expect(bad.revokedAt).toBeInstanceOf(Date);
  });

  it('refuses an answer for another certificate, from another CA, tampered, late or malformed', () => {
    const id = certId(cert(pki, 'good'), caOf(pki));
    const resp = ocspResponse(pki, 'good');
    expect(() => verifyOcspResponse(ocspResponse(pki, 'bad'), id, caOf(pki))).toThrow(
      /does not answer for this certificate/,
    );
    const foreign = ocspResponse(other, 'good');
    expect(() => verifyOcspResponse(foreign, certId(cert(other, 'good'), caOf(other)), caOf(pki))).toThrow(
      OcspError,
    );
    // A digit of producedAt (the first GeneralizedTime) changed: the signed data no longer matches.
    const tampered = Buffer.from(resp);
    tampered[tampered.indexOf(Buffer.from([0x18, 0x0f])) + 5] ^= 0x01;
    expect(() => verifyOcspResponse(tampered, id, caOf(pki))).toThrow(OcspError);
    expect(() => verifyOcspResponse(resp, id, caOf(pki), new Date(Date.now() + 3600_000))).toThrow(
      /out of date/,
    );
    expect(() => verifyOcspResponse(resp.subarray(0, 30), id, caOf(pki))).toThrow(OcspError);
  });
});

describe('RevocationChecker', () => {
  const chainOf = (p: RevocationPki, n: string) => [cert(p, n), caOf(p)];
  const checker = (s: object[]) =>
    new RevocationChecker(s as never, { log: silentLogger, audit: noopAuditSink });

  it('CRL: revoked refused, good accepted, an expired CRL refused unless allowed, other anchors unchecked', async () => {
    const crl = pki.writeCrl(join(pki.dir, 'k.crl'));
    const c = checker([{ trustAnchor: pki.ca, crls: [crl], allowExpiredCrl: false }]);
    expect(await c.check(chainOf(pki, 'good'))).toEqual({ ok: true });
    expect(await c.check(chainOf(pki, 'bad'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/revoked \(CRL/),
    });
    expect(await c.check(chainOf(other, 'good'))).toEqual({ ok: true });
    const old = pki.writeCrl(join(pki.dir, 'old.crl'), { lastUpdate: inHours(-48), nextUpdate: inHours(-1) });
    const strict = checker([{ trustAnchor: pki.ca, crls: [old], allowExpiredCrl: false }]);
    expect(await strict.check(chainOf(pki, 'good'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/expired/),
    });
    const lenient = checker([{ trustAnchor: pki.ca, crls: [old], allowExpiredCrl: true }]);
    expect(await lenient.check(chainOf(pki, 'good'))).toEqual({ ok: true });
    // A CRL of another CA does not cover this anchor's certificates.
    const foreign = other.writeCrl(join(other.dir, 'f.crl'));
    const uncovered = checker([{ trustAnchor: pki.ca, crls: [foreign], allowExpiredCrl: false }]);
    expect(await uncovered.check(chainOf(pki, 'good'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no CRL of/),
    });
  });

  it('OCSP: cached answers, no answer refused unless softFail, CRL as the fallback', async () => {
    let asked = 0;
    let up = true;
    const post = async (o: { body: string | Buffer | NodeJS.ReadableStream }) => {
      asked++;
      if (!up) throw new Error('connection refused');
      const req = join(pki.dir, `post-${asked}.req`);
      writeFileSync(req, o.body as Buffer);
      const name = verifyName(o.body as Buffer);
      const body = ocspResponse(pki, name);
      return { status: 200, contentType: 'application/ocsp-response', headers: {}, body: [body] as never };
    };
    // Which certificate a request is for (the tests use only "good" and "bad").
    const verifyName = (b: Buffer) =>
      b.equals(encodeOcspRequest(certId(cert(pki, 'good'), caOf(pki)))) ? 'good' : 'bad';
    const ocsp = { url: 'http://127.0.0.1:9/ocsp', timeoutMs: 1000, softFail: false };
    const c = checker([{ trustAnchor: pki.ca, crls: [], allowExpiredCrl: false, ocsp }]);
    c.useOutbound(post as never);
    expect(await c.check(chainOf(pki, 'good'))).toEqual({ ok: true });
    expect(await c.check(chainOf(pki, 'good'))).toEqual({ ok: true });
    expect(asked).toBe(1);
    expect(await c.check(chainOf(pki, 'bad'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/revoked \(OCSP/),
    });
    up = false;
    const fresh = checker([{ trustAnchor: pki.ca, crls: [], allowExpiredCrl: false, ocsp }]);
    fresh.useOutbound(post as never);
    expect(await fresh.check(chainOf(pki, 'good'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/status unknown/),
    });
    const soft = checker([
      { trustAnchor: pki.ca, crls: [], allowExpiredCrl: false, ocsp: { ...ocsp, softFail: true } },
    ]);
    soft.useOutbound(post as never);
    expect(await soft.check(chainOf(pki, 'good'))).toEqual({ ok: true });
    const withCrl = checker([
      { trustAnchor: pki.ca, crls: [pki.writeCrl(join(pki.dir, 'fb.crl'))], allowExpiredCrl: false, ocsp },
    ]);
    withCrl.useOutbound(post as never);
    expect(await withCrl.check(chainOf(pki, 'good'))).toEqual({ ok: true });
    expect(await withCrl.check(chainOf(pki, 'bad'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/revoked \(CRL/),
    });
  });
});
