/**
 * XUA assertion validation against assertions built and signed in the test (xml-crypto,
 * RSA-2048 keys and self-signed certificates made with openssl in a temp dir).
 */

import { execFileSync } from 'node:child_process';
import { sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignedXml } from 'xml-crypto';
import {
  XuaError,
  findAssertions,
  readAssertionUnverified,
  validateAssertion,
  type XuaFailureReason,
  type XuaPolicy,
} from '@xcai/shared/src/security/xua';

const EXC = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const C14N = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const ECDSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const SHA1 = 'http://www.w3.org/2000/09/xmldsig#sha1';

const AUDIENCE = 'urn:example:xcai:responding-gateway';
const ASSERTION_ID = '_a7c5e0f2-3b1d-4c8e-9f6a-0d2b4e6f8a10';

interface KeyPair {
  key: string;
  cert: string;
}

let dir: string;
let idp: KeyPair;
let attacker: KeyPair;
let ec: KeyPair;
/** Test start, whole seconds; the generated certificates are valid from shortly before. */
let NOW: Date;

function makeCert(name: string, keyArgs: string[]): KeyPair {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...keyArgs,
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-sha256',
      '-subj',
      `/CN=${name}/O=XUA test`,
    ],
    { stdio: 'pipe' },
  );
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xua-test-'));
  idp = makeCert('Test IdP', ['-newkey', 'rsa:2048']);
  attacker = makeCert('Test IdP', ['-newkey', 'rsa:2048']); // same subject, different key
  ec = makeCert('Test EC IdP', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  NOW = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const iso = (d: Date): string => d.toISOString();
const plus = (ms: number): Date => new Date(NOW.getTime() + ms);

interface BuildOptions {
  id?: string;
  version?: string;
  issuer?: string | null;
  issueInstant?: Date;
  notBefore?: Date;
  notOnOrAfter?: Date | null;
  scdNotOnOrAfter?: Date | null;
  audiences?: string[] | null;
  nameId?: string;
  subjectName?: string;
  homeCommunityIds?: string[];
  extraConditions?: string;
  extraAttributes?: string;
  /** Extra namespace declarations on the Assertion start tag. */
  rootNs?: string;
}

function buildAssertion(o: BuildOptions = {}): string {
  const issueInstant = o.issueInstant ?? plus(-1000);
  const notBefore = o.notBefore ?? plus(-60_000);
  const notOnOrAfter = o.notOnOrAfter === undefined ? plus(5 * 60_000) : o.notOnOrAfter;
  const scd = o.scdNotOnOrAfter === undefined ? plus(5 * 60_000) : o.scdNotOnOrAfter;
  const audiences = o.audiences === undefined ? [AUDIENCE] : o.audiences;
  const hcids = o.homeCommunityIds ?? ['urn:oid:1.3.6.1.4.1.21367.2017.2.6.19'];
  const conditionsAttrs =
    ` NotBefore="${iso(notBefore)}"` + (notOnOrAfter ? ` NotOnOrAfter="${iso(notOnOrAfter)}"` : '');
  const audienceXml = audiences
    ? `<saml2:AudienceRestriction>${audiences.map((a) => `<saml2:Audience>${a}</saml2:Audience>`).join('')}</saml2:AudienceRestriction>`
    : '';
  return `<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsd="http://www.w3.org/2001/XMLSchema"${o.rootNs ?? ''} ID="${o.id ?? ASSERTION_ID}" IssueInstant="${iso(issueInstant)}" Version="${o.version ?? '2.0'}">
  ${o.issuer === null ? '' : `<saml2:Issuer>${o.issuer ?? 'https://idp.example.org/sts'}</saml2:Issuer>`}
  <saml2:Subject>
    <saml2:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" NameQualifier="urn:gs1:gln">${o.nameId ?? '7601000000001'}</saml2:NameID>
    <saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <saml2:SubjectConfirmationData${scd ? ` NotOnOrAfter="${iso(scd)}"` : ''} Recipient="https://gateway.example.org/xca"/>
    </saml2:SubjectConfirmation>
  </saml2:Subject>
  <saml2:Conditions${conditionsAttrs}>${audienceXml}${o.extraConditions ?? ''}</saml2:Conditions>
  <saml2:AuthnStatement AuthnInstant="${iso(issueInstant)}">
    <saml2:AuthnContext><saml2:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml2:AuthnContextClassRef></saml2:AuthnContext>
  </saml2:AuthnStatement>
  <saml2:AttributeStatement>
    <saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:subject-id">
      <saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xsd:string">${o.subjectName ?? 'Sarah Stone'}</saml2:AttributeValue>
    </saml2:Attribute>
    <saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:organization">
      <saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xsd:string">Radiology Group &amp; Partners</saml2:AttributeValue>
    </saml2:Attribute>
    <saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:organization-id">
      <saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xsd:anyURI">urn:oid:1.2.3.4.5</saml2:AttributeValue>
    </saml2:Attribute>
    <saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role">
      <saml2:AttributeValue>
        <hl7:Role xmlns:hl7="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="hl7:CE" code="HCP" codeSystem="2.16.756.5.30.1.127.3.10.6" codeSystemName="eHealth Suisse EPR Actors" displayName="Healthcare professional"/>
      </saml2:AttributeValue>
      <saml2:AttributeValue>
        <CE xmlns="urn:hl7-org:v3" code="112247003" codeSystem="2.16.840.1.113883.6.96" displayName="Medical doctor"/>
      </saml2:AttributeValue>
    </saml2:Attribute>
    <saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse">
      <saml2:AttributeValue>
        <hl7:PurposeOfUse xmlns:hl7="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="hl7:CE" code="TREATMENT" codeSystem="2.16.840.1.113883.3.18.7.1" displayName="Treatment"/>
      </saml2:AttributeValue>
    </saml2:Attribute>
    <saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:resource:resource-id">
      <saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xsd:token">761337610410098484^^^&amp;2.16.756.5.30.1.127.3.10.3&amp;ISO</saml2:AttributeValue>
    </saml2:Attribute>
    <saml2:Attribute Name="urn:ihe:iti:xca:2010:homeCommunityId" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      ${hcids.map((h) => `<saml2:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xsd:anyURI">${h}</saml2:AttributeValue>`).join('\n      ')}
    </saml2:Attribute>${o.extraAttributes ?? ''}
  </saml2:AttributeStatement>
</saml2:Assertion>`;
}

/** ECDSA is not built into xml-crypto; XML-DSig wants the raw r||s form. */
class EcdsaSha256 {
  getSignature(signedInfo: string | Buffer, privateKey: string): string {
    return cryptoSign('sha256', Buffer.from(signedInfo), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    }).toString('base64');
  }
  verifySignature(material: string, key: string, signatureValue: string): boolean {
    return cryptoVerify(
      'sha256',
      Buffer.from(material),
      { key, dsaEncoding: 'ieee-p1363' },
      Buffer.from(signatureValue, 'base64'),
    );
  }
  getAlgorithmName(): string {
    return ECDSA_SHA256;
  }
}

interface SignOptions {
  signer?: KeyPair;
  /** Certificate put into KeyInfo; null → no KeyInfo. Default: the signer's certificate. */
  keyInfoCert?: string | null;
  signatureAlgorithm?: string;
  digestAlgorithm?: string;
  canonicalizationAlgorithm?: string;
  transforms?: string[];
  /** XPath of the element to sign; default the document element. */
  referenceXpath?: string;
  emptyUri?: boolean;
  prefixList?: string[];
  /** XPath of the element after which the Signature is inserted. */
  after?: string;
}

function sign(xml: string, o: SignOptions = {}): string {
  const signer = o.signer ?? idp;
  const keyInfoCert = o.keyInfoCert === undefined ? signer.cert : o.keyInfoCert;
  const sig = new SignedXml({
    privateKey: signer.key,
    publicCert: keyInfoCert ?? undefined,
    signatureAlgorithm: o.signatureAlgorithm ?? RSA_SHA256,
    canonicalizationAlgorithm: o.canonicalizationAlgorithm ?? EXC,
    getKeyInfoContent: keyInfoCert === null ? () => null : SignedXml.getKeyInfoContent,
  });
  if ((o.signatureAlgorithm ?? RSA_SHA256) === ECDSA_SHA256) {
    (sig.SignatureAlgorithms as Record<string, unknown>)[ECDSA_SHA256] = EcdsaSha256;
  }
  sig.addReference({
    xpath: o.referenceXpath ?? "/*[local-name(.)='Assertion']",
    transforms: o.transforms ?? [ENVELOPED, EXC],
    digestAlgorithm: o.digestAlgorithm ?? SHA256,
    isEmptyUri: o.emptyUri ?? false,
    inclusiveNamespacesPrefixList: o.prefixList ?? [],
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: o.after ?? "/*/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

function policy(extra: Partial<XuaPolicy> = {}): XuaPolicy {
  return {
    trustedCertificates: [idp.cert],
    audiences: [AUDIENCE],
    clockSkewMs: 60_000,
    now: () => NOW,
    ...extra,
  };
}

function reasonOf(fn: () => unknown): XuaFailureReason | 'no error' | string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    if (e instanceof XuaError) return e.reason;
    return `non-XuaError: ${(e as Error).message}`;
  }
}

const rejects = (xml: string, p: XuaPolicy = policy()): string => reasonOf(() => validateAssertion(xml, p));

describe('validateAssertion — happy path', () => {
  test('RSA-SHA256 / exc-c14n / enveloped assertion validates and yields the claims', () => {
    const signed = sign(buildAssertion());
    const a = validateAssertion(signed, policy());
    expect(a.verified).toBe(true);
    expect(a.id).toBe(ASSERTION_ID);
    expect(a.issuer).toBe('https://idp.example.org/sts');
    expect(a.subjectNameId).toBe('7601000000001');
    expect(a.subjectNameIdFormat).toBe('urn:oasis:names:tc:SAML:2.0:nameid-format:persistent');
    expect(a.subjectId).toBe('Sarah Stone');
    expect(a.roles).toEqual([
      {
        code: 'HCP',
        codeSystem: '2.16.756.5.30.1.127.3.10.6',
        codeSystemName: 'eHealth Suisse EPR Actors',
        displayName: 'Healthcare professional',
      },
      { code: '112247003', codeSystem: '2.16.840.1.113883.6.96', displayName: 'Medical doctor' },
    ]);
    expect(a.organization).toBe('Radiology Group & Partners');
    expect(a.organizationId).toBe('urn:oid:1.2.3.4.5');
    expect(a.homeCommunityId).toBe('urn:oid:1.3.6.1.4.1.21367.2017.2.6.19');
    expect(a.purposeOfUse).toEqual([
      { code: 'TREATMENT', codeSystem: '2.16.840.1.113883.3.18.7.1', displayName: 'Treatment' },
    ]);
    expect(a.patientId).toBe('761337610410098484^^^&2.16.756.5.30.1.127.3.10.3&ISO');
    expect(a.notOnOrAfter.toISOString()).toBe(plus(5 * 60_000).toISOString());
    expect(a.audiences).toEqual([AUDIENCE]);
    expect(a.subjectConfirmationMethods).toEqual(['urn:oasis:names:tc:SAML:2.0:cm:bearer']);
    expect(a.recipients).toEqual(['https://gateway.example.org/xca']);
    expect(a.oneTimeUse).toBe(false);
    expect(a.signatureAlgorithm).toBe(RSA_SHA256);
    expect(a.signer.subject).toContain('CN=Test IdP');
    expect(a.attributes['urn:oasis:names:tc:xspa:1.0:subject:subject-id']).toEqual(['Sarah Stone']);
  });

  test('validates without KeyInfo (key comes from the trust list only)', () => {
    expect(rejects(sign(buildAssertion(), { keyInfoCert: null }))).toBe('no error');
  });

  test('a trust list with several certificates (and a PEM bundle) finds the right key', () => {
    const signed = sign(buildAssertion());
    expect(rejects(signed, policy({ trustedCertificates: [attacker.cert, idp.cert] }))).toBe('no error');
    expect(rejects(signed, policy({ trustedCertificates: [attacker.cert + idp.cert] }))).toBe('no error');
  });

  test('ECDSA P-256 (ecdsa-sha256, r||s) validates', () => {
    const signed = sign(buildAssertion(), { signer: ec, signatureAlgorithm: ECDSA_SHA256 });
    expect(rejects(signed, policy({ trustedCertificates: [ec.cert] }))).toBe('no error');
    expect(rejects(signed, policy({ trustedCertificates: [idp.cert] }))).toBe('untrusted-signer');
  });

  test('the earliest NotOnOrAfter (SubjectConfirmationData) is reported', () => {
    const a = validateAssertion(sign(buildAssertion({ scdNotOnOrAfter: plus(2 * 60_000) })), policy());
    expect(a.notOnOrAfter.toISOString()).toBe(plus(2 * 60_000).toISOString());
  });

  test('the NHIN homeCommunityId attribute name is accepted as alias', () => {
    const xml = buildAssertion({ homeCommunityIds: [] }).replace(
      '<saml2:Attribute Name="urn:ihe:iti:xca:2010:homeCommunityId" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">',
      '<saml2:Attribute Name="urn:nhin:names:saml:homeCommunityId"><saml2:AttributeValue>urn:oid:2.16.840.1.113883.3.9621</saml2:AttributeValue>',
    );
    expect(validateAssertion(sign(xml), policy()).homeCommunityId).toBe('urn:oid:2.16.840.1.113883.3.9621');
  });
});

describe('validateAssertion — tampering and trust', () => {
  test('changed attribute value → bad-signature', () => {
    const signed = sign(buildAssertion());
    expect(signed).toContain('Sarah Stone');
    expect(rejects(signed.replace('Sarah Stone', 'Mallory Evil'))).toBe('bad-signature');
  });

  test('changed role code → bad-signature', () => {
    const signed = sign(buildAssertion());
    expect(rejects(signed.replace('code="HCP"', 'code="ADMIN"'))).toBe('bad-signature');
  });

  test('changed Conditions/@NotOnOrAfter → bad-signature', () => {
    const signed = sign(buildAssertion());
    const later = iso(plus(5 * 60_000)).replace(/^\d{4}/, (y) => String(Number(y) + 1));
    expect(
      rejects(signed.replace(`NotOnOrAfter="${iso(plus(5 * 60_000))}"`, `NotOnOrAfter="${later}"`)),
    ).toBe('bad-signature');
  });

  test('altered SignatureValue → bad-signature', () => {
    const signed = sign(buildAssertion());
    const altered = signed.replace(
      /<ds:SignatureValue>(.)/,
      (_m, c: string) => `<ds:SignatureValue>${c === 'A' ? 'B' : 'A'}`,
    );
    expect(altered).not.toBe(signed);
    expect(rejects(altered)).toBe('bad-signature');
  });

  test('signed by an untrusted key (its own certificate in KeyInfo) → untrusted-signer', () => {
    expect(rejects(sign(buildAssertion(), { signer: attacker }))).toBe('untrusted-signer');
  });

  test('signed by an untrusted key without KeyInfo → untrusted-signer', () => {
    expect(rejects(sign(buildAssertion(), { signer: attacker, keyInfoCert: null }))).toBe('untrusted-signer');
  });

  test('untrusted key with the TRUSTED certificate copied into KeyInfo is not accepted', () => {
    const r = rejects(sign(buildAssertion(), { signer: attacker, keyInfoCert: idp.cert }));
    expect(r).not.toBe('no error');
    expect(['bad-signature', 'untrusted-signer']).toContain(r);
  });

  test('trusted certificate outside its validity period → untrusted-signer, unless ignoreCertificateExpiry', () => {
    const later = new Date(NOW.getTime() + 5 * 86_400_000);
    const xml = sign(
      buildAssertion({
        issueInstant: new Date(later.getTime() - 1000),
        notBefore: new Date(later.getTime() - 60_000),
        notOnOrAfter: new Date(later.getTime() + 60_000),
        scdNotOnOrAfter: new Date(later.getTime() + 60_000),
      }),
    );
    expect(rejects(xml, policy({ now: () => later }))).toBe('untrusted-signer');
    expect(rejects(xml, policy({ now: () => later, ignoreCertificateExpiry: true }))).toBe('no error');
  });

  test('issuer allow-list', () => {
    const signed = sign(buildAssertion());
    expect(rejects(signed, policy({ issuers: ['https://idp.example.org/sts'] }))).toBe('no error');
    expect(rejects(signed, policy({ issuers: ['https://other.example.org'] }))).toBe('issuer');
  });

  test('policy errors are plain Errors, not XuaErrors', () => {
    const signed = sign(buildAssertion());
    expect(reasonOf(() => validateAssertion(signed, policy({ trustedCertificates: [] })))).toMatch(
      /^non-XuaError/,
    );
    expect(reasonOf(() => validateAssertion(signed, policy({ trustedCertificates: ['not a pem'] })))).toMatch(
      /^non-XuaError/,
    );
    expect(reasonOf(() => validateAssertion(signed, policy({ clockSkewMs: NaN })))).toMatch(/^non-XuaError/);
  });
});

describe('validateAssertion — time window', () => {
  const window = (nowOffsetMs: number, skew = 60_000): string => {
    const signed = sign(buildAssertion());
    return rejects(signed, policy({ clockSkewMs: skew, now: () => plus(nowOffsetMs) }));
  };

  test('expired beyond skew → expired', () => {
    expect(window(5 * 60_000 + 60_000 + 1)).toBe('expired');
    expect(window(5 * 60_000, 0)).toBe('expired'); // NotOnOrAfter is exclusive
  });

  test('expired but within skew → accepted', () => {
    expect(window(5 * 60_000 + 59_000)).toBe('no error');
  });

  test('NotBefore in the future → not-yet-valid; within skew → accepted', () => {
    const xml = sign(buildAssertion({ notBefore: plus(5 * 60_000), issueInstant: plus(-1000) }));
    expect(rejects(xml)).toBe('not-yet-valid');
    expect(rejects(xml, policy({ clockSkewMs: 6 * 60_000 }))).toBe('no error');
  });

  test('IssueInstant in the future beyond skew → not-yet-valid', () => {
    expect(rejects(sign(buildAssertion({ issueInstant: plus(10 * 60_000) })))).toBe('not-yet-valid');
  });

  test('SubjectConfirmationData/@NotOnOrAfter passed while Conditions still valid → expired', () => {
    const xml = sign(buildAssertion({ scdNotOnOrAfter: plus(-2 * 60_000) }));
    expect(rejects(xml)).toBe('expired');
  });

  test('missing Conditions/@NotOnOrAfter (unbounded lifetime) → malformed', () => {
    expect(rejects(sign(buildAssertion({ notOnOrAfter: null })))).toBe('malformed');
  });

  test('unparsable dateTime → malformed', () => {
    const xml = buildAssertion().replace(/NotBefore="[^"]+"/, 'NotBefore="yesterday"');
    expect(rejects(sign(xml))).toBe('malformed');
  });
});

describe('validateAssertion — audience and conditions', () => {
  test('wrong audience → audience', () => {
    expect(rejects(sign(buildAssertion({ audiences: ['urn:example:someone-else'] })))).toBe('audience');
  });

  test('one matching audience among several is enough', () => {
    expect(rejects(sign(buildAssertion({ audiences: ['urn:example:someone-else', AUDIENCE] })))).toBe(
      'no error',
    );
  });

  test('policy requires an audience, assertion has none → audience', () => {
    expect(rejects(sign(buildAssertion({ audiences: null })))).toBe('audience');
  });

  test('policy without audiences accepts only assertions without AudienceRestriction', () => {
    expect(rejects(sign(buildAssertion({ audiences: null })), policy({ audiences: [] }))).toBe('no error');
    expect(rejects(sign(buildAssertion()), policy({ audiences: [] }))).toBe('audience');
  });

  test('every AudienceRestriction must be satisfied', () => {
    const xml = buildAssertion({
      extraConditions:
        '<saml2:AudienceRestriction><saml2:Audience>urn:example:other</saml2:Audience></saml2:AudienceRestriction>',
    });
    expect(rejects(sign(xml))).toBe('audience');
  });

  test('OneTimeUse is reported, unknown Condition types are refused', () => {
    const once = validateAssertion(
      sign(buildAssertion({ extraConditions: '<saml2:OneTimeUse/>' })),
      policy(),
    );
    expect(once.oneTimeUse).toBe(true);
    const custom = buildAssertion({
      extraConditions:
        '<saml2:Condition xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ex="urn:example" xsi:type="ex:Custom"/>',
    });
    expect(rejects(sign(custom))).toBe('conditions');
  });
});

describe('validateAssertion — signature wrapping', () => {
  test('forged Assertion wrapping the genuine signed one (in Advice) → wrapping', () => {
    const genuine = sign(buildAssertion());
    const forged = buildAssertion({ id: '_forged', subjectName: 'Mallory Evil' }).replace(
      '<saml2:Subject>',
      `<saml2:Advice>${genuine}</saml2:Advice><saml2:Subject>`,
    );
    expect(rejects(forged)).toBe('wrapping');
  });

  test('forged Assertion with the same ID wrapping the genuine one → wrapping', () => {
    const genuine = sign(buildAssertion());
    const forged = buildAssertion({ subjectName: 'Mallory Evil' }).replace(
      '<saml2:Subject>',
      `<saml2:Advice>${genuine}</saml2:Advice><saml2:Subject>`,
    );
    expect(rejects(forged)).toBe('wrapping');
  });

  test('signature moved onto a forged Assertion, genuine one hidden inside → wrapping', () => {
    const genuine = sign(buildAssertion());
    const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(genuine)![0];
    const genuineUnsigned = genuine.replace(signature, '');
    const forged = buildAssertion({ id: '_forged', subjectName: 'Mallory Evil' })
      .replace('</saml2:Issuer>', `</saml2:Issuer>${signature}`)
      .replace('<saml2:Subject>', `<saml2:Advice>${genuineUnsigned}</saml2:Advice><saml2:Subject>`);
    expect(rejects(forged)).toBe('wrapping');
  });

  test('Reference pointing at another element (a signed child, not the Assertion) → wrapping', () => {
    const xml = buildAssertion().replace(
      '<saml2:AttributeStatement>',
      '<saml2:AttributeStatement ID="_attrs">',
    );
    const signed = sign(xml, { referenceXpath: "//*[local-name(.)='AttributeStatement']" });
    expect(signed).toContain('URI="#_attrs"');
    expect(rejects(signed)).toBe('wrapping');
  });

  test('empty Reference URI (whole document) → wrapping', () => {
    const signed = sign(buildAssertion(), { emptyUri: true });
    expect(signed).toContain('URI=""');
    expect(rejects(signed)).toBe('wrapping');
  });

  test('the Assertion ID repeated on another element → wrapping', () => {
    const signed = sign(buildAssertion()).replace(
      '<saml2:AuthnStatement',
      `<saml2:Extra xmlns:saml2x="urn:x" ID="${ASSERTION_ID}"/><saml2:AuthnStatement`,
    );
    expect(rejects(signed)).toBe('wrapping');
  });

  test('two signatures → wrapping', () => {
    const once = sign(buildAssertion());
    const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(once)![0];
    expect(rejects(once.replace(signature, signature + signature))).toBe('wrapping');
  });

  test('forged content smuggled into ds:Signature/ds:Object is refused', () => {
    const signed = sign(buildAssertion()).replace(
      '</ds:Signature>',
      `<ds:Object>${buildAssertion({ id: '_inner', subjectName: 'Mallory Evil' })}</ds:Object></ds:Signature>`,
    );
    expect(rejects(signed)).not.toBe('no error');
  });

  test('comment injection does not truncate the value read (what is signed is what is read)', () => {
    const signed = sign(buildAssertion({ nameId: 'admin@example.org.evil.test' }));
    const injected = signed.replace('admin@example.org.evil.test', 'admin@example.org<!---->.evil.test');
    const a = validateAssertion(injected, policy()); // comments are outside the signed canonical form
    expect(a.subjectNameId).toBe('admin@example.org.evil.test');
  });

  test('an unsigned assertion → no-signature', () => {
    expect(rejects(buildAssertion())).toBe('no-signature');
  });
});

describe('validateAssertion — algorithms', () => {
  const sha1Signed = (): string =>
    sign(buildAssertion(), { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 });

  test('RSA-SHA1 / SHA-1 digest refused by default, accepted with allowSha1', () => {
    expect(rejects(sha1Signed())).toBe('algorithm');
    expect(rejects(sha1Signed(), policy({ allowSha1: true }))).toBe('no error');
  });

  test('SHA-1 digest under an RSA-SHA256 signature is refused by default', () => {
    expect(rejects(sign(buildAssertion(), { digestAlgorithm: SHA1 }))).toBe('algorithm');
  });

  test('inclusive c14n as CanonicalizationMethod → algorithm', () => {
    expect(rejects(sign(buildAssertion(), { canonicalizationAlgorithm: C14N }))).toBe('algorithm');
  });

  test('transforms other than [enveloped, exc-c14n] → algorithm', () => {
    expect(rejects(sign(buildAssertion(), { transforms: [ENVELOPED] }))).toBe('algorithm');
    expect(rejects(sign(buildAssertion(), { transforms: [ENVELOPED, C14N] }))).toBe('algorithm');
  });

  test('HMAC signature method → algorithm', () => {
    const signed = sign(buildAssertion()).replace(RSA_SHA256, 'http://www.w3.org/2000/09/xmldsig#hmac-sha1');
    expect(rejects(signed)).toBe('algorithm');
  });

  test('an Algorithm of "__proto__" resolves to nothing', () => {
    expect(rejects(sign(buildAssertion()).replace(RSA_SHA256, '__proto__'))).toBe('algorithm');
    expect(rejects(sign(buildAssertion()).replace(SHA256, 'constructor'))).toBe('algorithm');
  });
});

describe('validateAssertion — malformed input', () => {
  test('DOCTYPE (entity expansion) → malformed', () => {
    const bomb =
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>' +
      buildAssertion({ subjectName: '&lol2;' });
    expect(rejects(bomb)).toBe('malformed');
    expect(reasonOf(() => readAssertionUnverified(bomb))).toBe('malformed');
  });

  test('external entity → malformed', () => {
    const xxe =
      '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + buildAssertion({ subjectName: '&x;' });
    expect(rejects(xxe)).toBe('malformed');
  });

  test('not well-formed / not an Assertion / wrong version / PI → malformed', () => {
    const signed = sign(buildAssertion());
    expect(rejects(signed.slice(0, -5))).toBe('malformed');
    expect(rejects('<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"/>')).toBe('malformed');
    expect(rejects(buildAssertion({ version: '1.1' }))).toBe('malformed');
    expect(rejects(signed.replace('<saml2:Subject>', '<?evil x?><saml2:Subject>'))).toBe('malformed');
    expect(rejects('')).toBe('malformed');
  });

  test('excessive nesting and size → malformed (no stack overflow)', () => {
    const deep = '<a>'.repeat(5000) + '</a>'.repeat(5000);
    expect(rejects(buildAssertion().replace('<saml2:Subject>', `${deep}<saml2:Subject>`))).toBe('malformed');
    expect(rejects(buildAssertion({ subjectName: 'x'.repeat(300_000) }))).toBe('malformed');
  });

  test('missing Issuer / ambiguous single-valued attribute after a valid signature → malformed', () => {
    expect(rejects(sign(buildAssertion({ issuer: null }), { after: "/*/*[local-name(.)='Subject']" }))).toBe(
      'malformed',
    );
    const twoHomes = buildAssertion({ homeCommunityIds: ['urn:oid:1.1', 'urn:oid:2.2'] });
    expect(rejects(sign(twoHomes))).toBe('malformed');
  });
});

describe('readAssertionUnverified', () => {
  test('reads a tampered assertion without checking anything, marked verified: false', () => {
    const tampered = sign(buildAssertion()).replace('Sarah Stone', 'Mallory Evil');
    const info = readAssertionUnverified(tampered);
    expect(info.verified).toBe(false);
    expect(info.subjectId).toBe('Mallory Evil');
    expect(info.roles.map((r) => r.code)).toEqual(['HCP', '112247003']);
    expect(info.notOnOrAfter?.toISOString()).toBe(plus(5 * 60_000).toISOString());
  });

  test('is lenient where validation is strict', () => {
    const info = readAssertionUnverified(
      buildAssertion({ homeCommunityIds: ['urn:oid:1.1', 'urn:oid:2.2'] }),
    );
    expect(info.homeCommunityId).toBe('urn:oid:1.1');
  });

  test('an attribute named __proto__ stays a plain entry', () => {
    const xml = buildAssertion({
      extraAttributes:
        '<saml2:Attribute Name="__proto__"><saml2:AttributeValue>polluted</saml2:AttributeValue></saml2:Attribute>',
    });
    const info = readAssertionUnverified(xml);
    expect(info.attributes['__proto__']).toEqual(['polluted']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('findAssertions', () => {
  test('slices the assertion out of an envelope, redeclaring inherited namespaces, and it still validates', () => {
    // saml2 and xsd are declared on the Envelope only; the IdP signed with PrefixList="xsd".
    const inner = buildAssertion().replace(
      ' xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsd="http://www.w3.org/2001/XMLSchema"',
      '',
    );
    const envelope =
      '<?xml version="1.0" encoding="UTF-8"?>\r\n' +
      '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsd="http://www.w3.org/2001/XMLSchema">\r\n' +
      '<soap:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">' +
      `<!-- <saml2:Assertion> in a comment is ignored -->${inner}</wsse:Security></soap:Header>\r\n` +
      '<soap:Body/></soap:Envelope>';
    const signedEnvelope = sign(envelope, {
      referenceXpath: "//*[local-name(.)='Assertion']",
      after: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']",
      prefixList: ['xsd'],
    });
    const found = findAssertions(signedEnvelope);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(
      /^<saml2:Assertion xmlns:soap="[^"]+" xmlns:saml2="[^"]+" xmlns:xsd="[^"]+" xmlns:wsse="[^"]+" ID=/,
    );
    const a = validateAssertion(found[0], policy());
    expect(a.subjectId).toBe('Sarah Stone');
  });

  test('returns every top-level assertion (the caller must insist on exactly one)', () => {
    const one = sign(buildAssertion());
    const two = buildAssertion({ id: '_second', subjectName: 'Mallory Evil' });
    const header = `<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">${one}${two}</wsse:Security>`;
    const found = findAssertions(header);
    expect(found).toHaveLength(2);
    expect(rejects(found[0])).toBe('no error');
    expect(rejects(found[1])).toBe('no-signature');
  });

  test('refuses a DOCTYPE', () => {
    expect(reasonOf(() => findAssertions('<!DOCTYPE x []><x/>'))).toBe('malformed');
  });
});
