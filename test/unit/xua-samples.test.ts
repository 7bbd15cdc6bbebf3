/**
 * XUA handling of assertions shaped like those deployed peers send (test/fixtures/ihe/samples/xua:
 * a regional STS's bearer assertion and a national-network gateway's holder-of-key assertion),
 * signed here the way those peers sign them — RSA-SHA1 with the signer's certificate in KeyInfo —
 * and damaged the ways captured samples are:
 *  - RSA-SHA1 is refused by default ('algorithm'), accepted only with allowSha1;
 *  - signed by a certificate we do not trust → 'untrusted-signer';
 *  - SignatureValue and certificate elided ("omitted for brevity") → 'malformed', not a crash;
 *  - re-indented after signing → 'bad-signature' even with the signer's own certificate; removing
 *    the whitespace between tags restores the signed bytes and the assertion validates.
 */
import { readFileSync } from 'node:fs';
import {
  XuaError,
  findAssertions,
  readAssertionUnverified,
  validateAssertion,
  type XuaPolicy,
} from '@xcai/shared/src/security/xua';
import { sample } from '../support/fixtures';
import { makeIdp, signAssertion, type TestIdp } from '../support/xua';

/**
 * The template as one line (no declaration, comments or whitespace between tags), as STSs emit it,
 * dated tomorrow so that it falls inside the validity of the certificate made for this run.
 */
const DAY = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
const at = (time: string) => new Date(`${DAY}T${time}Z`);
function compact(file: string): string {
  return readFileSync(sample(file), 'utf8')
    .replaceAll('2026-11-20T', `${DAY}T`)
    .replace(/<\?xml[^>]*\?>/, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/>\s+</g, '><')
    .trim();
}

/** What a pretty-printer does to a stored capture: whitespace between every two tags. */
const reindent = (xml: string) => xml.replace(/></g, '>\n  <');

function elideSignature(xml: string): string {
  return xml
    .replace(
      /<ds:SignatureValue>[^<]*<\/ds:SignatureValue>/,
      '<ds:SignatureValue>...omitted for brevity...</ds:SignatureValue>',
    )
    .replace(
      /<ds:X509Certificate>[^<]*<\/ds:X509Certificate>/,
      '<ds:X509Certificate>...</ds:X509Certificate>',
    );
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return e instanceof XuaError ? e.reason : `non-XuaError: ${(e as Error).message}`;
  }
}

const STS = 'xua/xcai-assertion-regional-sts.xml';
const GATEWAY = 'xua/xcai-assertion-gateway-hok.xml';
const VALID_AT: Record<string, Date> = { [STS]: at('09:01:00'), [GATEWAY]: at('10:01:00') };

let signer: TestIdp;
let unrelated: TestIdp;
const signed: Record<string, string> = {};

beforeAll(() => {
  signer = makeIdp('Regional STS');
  unrelated = makeIdp('Unrelated IdP');
  for (const f of [STS, GATEWAY]) signed[f] = signAssertion(compact(f), signer, 'sha1');
});

afterAll(() => {
  signer?.remove();
  unrelated?.remove();
});

const policy = (file: string, extra: Partial<XuaPolicy> = {}): XuaPolicy => ({
  trustedCertificates: [signer.cert],
  audiences: readAssertionUnverified(signed[file]).audiences,
  clockSkewMs: 60_000,
  allowSha1: true,
  now: () => VALID_AT[file],
  ...extra,
});

describe('readAssertionUnverified on peer-shaped assertions', () => {
  test('regional STS (bearer, national role codes, PurposeOfUse, patient as resource-id)', () => {
    const a = readAssertionUnverified(signed[STS]);
    expect(a.verified).toBe(false);
    expect(a.id).toBe('_3c1d6a2e-7f0b-4e52-9a41-1b7d5f0c9e21');
    expect(a.issuer).toBe('https://sts.hie-kanto.example/sts');
    expect(a.subjectNameId).toBe('7601000000001');
    expect(a.subjectId).toBe('Sato Hanako');
    expect(a.roles).toEqual([
      {
        code: 'HCP',
        codeSystem: '1.2.392.200119.6.999.1',
        codeSystemName: 'xcai test actor roles',
        displayName: 'Healthcare professional',
      },
    ]);
    expect(a.organization).toBe('Kanto Regional Hospital');
    expect(a.organizationId).toBe('urn:oid:1.2.392.200119.6.999.2.10');
    expect(a.homeCommunityId).toBe('urn:oid:1.2.392.200119.6.999.2');
    expect(a.purposeOfUse).toEqual([
      {
        code: 'ETREAT',
        codeSystem: '2.16.840.1.113883.5.8',
        codeSystemName: 'HL7 ActReason',
        displayName: 'Emergency treatment',
      },
    ]);
    expect(a.patientId).toBe('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO');
    expect(a.notOnOrAfter).toEqual(at('09:05:00'));
    expect(a.audiences).toEqual(['urn:xcai:token-audience:all-communities']);
    expect(a.subjectConfirmationMethods).toEqual(['urn:oasis:names:tc:SAML:2.0:cm:bearer']);
  });

  test('gateway holder-of-key (X.509 subject NameID, NHIN home community attribute, SNOMED role)', () => {
    const a = readAssertionUnverified(signed[GATEWAY]);
    expect(a.id).toBe('_8f2b7c64-0d3e-4a1f-b5c9-62e4a7d90b13');
    expect(a.issuer).toBe('gateway-operations@hie-kinki.example');
    expect(a.subjectNameId).toBe('CN=gw.hie-kinki.example,OU=XCA-TEST,O=HIE Kinki,C=JP');
    expect(a.subjectId).toBe('Administrator');
    expect(a.roles).toEqual([
      {
        code: '224608005',
        codeSystem: '2.16.840.1.113883.6.96',
        codeSystemName: 'SNOMED_CT',
        displayName: 'Administrator',
      },
    ]);
    expect(a.homeCommunityId).toBe('urn:oid:1.2.392.200119.6.999.3'); // urn:nhin:names:saml:homeCommunityId
    expect(a.purposeOfUse.map((p) => p.code)).toEqual(['TREATMENT']);
    expect(a.subjectConfirmationMethods).toEqual(['urn:oasis:names:tc:SAML:2.0:cm:holder-of-key']);
    expect(a.audiences).toEqual(['https://gw.hie-kanto.example/respondinggateway/iti38']);
  });

  test('an assertion in a wsse:Security header is found as sent', () => {
    const envelope = readFileSync(sample('iti-18/xcai-iti18-request-xua.soap.xml'), 'utf8');
    const found = findAssertions(envelope);
    expect(found).toHaveLength(1);
    expect(readAssertionUnverified(found[0]).issuer).toBe('https://sts.hie-kanto.example/sts');
  });
});

describe('validateAssertion on peer-shaped assertions', () => {
  test.each([STS, GATEWAY])(
    '%s: as signed, it validates with the signer trusted and SHA-1 allowed',
    (file) => {
      const a = validateAssertion(signed[file], policy(file));
      expect(a.verified).toBe(true);
      expect(a.signer.subject).toContain('CN=Regional STS');
      expect(a.signatureAlgorithm).toBe('http://www.w3.org/2000/09/xmldsig#rsa-sha1');
    },
  );

  test.each([STS, GATEWAY])('%s: rsa-sha1 is refused by default', (file) => {
    expect(reasonOf(() => validateAssertion(signed[file], policy(file, { allowSha1: false })))).toBe(
      'algorithm',
    );
  });

  test.each([STS, GATEWAY])('%s: signed by a certificate we do not trust → untrusted-signer', (file) => {
    const p = policy(file, { trustedCertificates: [unrelated.cert] });
    expect(reasonOf(() => validateAssertion(signed[file], p))).toBe('untrusted-signer');
  });

  test('an elided SignatureValue is malformed, not a crash', () => {
    expect(reasonOf(() => validateAssertion(elideSignature(signed[STS]), policy(STS)))).toBe('malformed');
  });

  test.each([STS, GATEWAY])(
    '%s re-indented after signing does not verify, even with its own certificate; without the whitespace it does',
    (file) => {
      const stored = reindent(signed[file]);
      expect(stored).not.toBe(signed[file]);
      expect(reasonOf(() => validateAssertion(stored, policy(file)))).toBe('bad-signature');
      const restored = stored.replace(/>\s+</g, '><');
      expect(validateAssertion(restored, policy(file)).verified).toBe(true);
    },
  );

  test('the same bytes are refused once expired', () => {
    const late = policy(GATEWAY, { now: () => at('10:30:00') });
    expect(reasonOf(() => validateAssertion(signed[GATEWAY], late))).toBe('expired');
  });
});
