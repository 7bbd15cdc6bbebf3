/**
 * XUA test identity provider: an RSA key and self-signed certificate made with openssl, and signed
 * SAML 2.0 assertions (xml-crypto) with the XUA attributes the gateways read.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignedXml } from 'xml-crypto';

export interface TestIdp {
  certFile: string;
  cert: string;
  key: string;
  remove(): void;
}

export function makeIdp(name = 'Test IdP'): TestIdp {
  const dir = mkdtempSync(join(tmpdir(), 'xcai-idp-'));
  const key = join(dir, 'idp.key');
  const cert = join(dir, 'idp.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-sha256',
    ].concat(['-subj', `/CN=${name}/O=xcai test`]),
    { stdio: 'pipe' },
  );
  return {
    certFile: cert,
    cert: readFileSync(cert, 'utf8'),
    key: readFileSync(key, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface AssertionOptions {
  id?: string;
  audience?: string;
  /** Offsets from now, ms. */
  notBeforeMs?: number;
  notOnOrAfterMs?: number;
  issueInstantMs?: number;
  nameId?: string;
  subjectName?: string;
  homeCommunityId?: string;
  role?: { code: string; codeSystem: string; displayName: string };
  /** XUA PurposeOfUse (HL7 CE), e.g. ETREAT of ActReason 2.16.840.1.113883.5.8 for an emergency. */
  purposeOfUse?: { code: string; codeSystem: string; displayName: string };
}

const iso = (ms: number) => new Date(Math.floor((Date.now() + ms) / 1000) * 1000).toISOString();

export function buildAssertion(o: AssertionOptions = {}): string {
  const role = o.role ?? {
    code: '309343006',
    codeSystem: '2.16.840.1.113883.6.96',
    displayName: 'Physician',
  };
  const hcid = o.homeCommunityId
    ? `<saml2:Attribute Name="urn:ihe:iti:xca:2010:homeCommunityId"><saml2:AttributeValue>${o.homeCommunityId}</saml2:AttributeValue></saml2:Attribute>`
    : '';
  return (
    `<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="${o.id ?? `_${crypto.randomUUID()}`}" ` +
    `IssueInstant="${iso(o.issueInstantMs ?? -1000)}" Version="2.0">` +
    `<saml2:Issuer>https://idp.example.org/sts</saml2:Issuer>` +
    `<saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">${o.nameId ?? 'dr.yamada@hospital-a.example'}</saml2:NameID>` +
    `<saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"/></saml2:Subject>` +
    `<saml2:Conditions NotBefore="${iso(o.notBeforeMs ?? -60_000)}" NotOnOrAfter="${iso(o.notOnOrAfterMs ?? 300_000)}">` +
    `<saml2:AudienceRestriction><saml2:Audience>${o.audience ?? 'urn:xcai:test:gateways'}</saml2:Audience></saml2:AudienceRestriction>` +
    `</saml2:Conditions>` +
    `<saml2:AuthnStatement AuthnInstant="${iso(-1000)}"><saml2:AuthnContext><saml2:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:X509</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>` +
    `<saml2:AttributeStatement>` +
    `<saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:subject-id"><saml2:AttributeValue>${o.subjectName ?? 'Yamada Taro'}</saml2:AttributeValue></saml2:Attribute>` +
    `<saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:organization"><saml2:AttributeValue>Hospital A</saml2:AttributeValue></saml2:Attribute>` +
    `<saml2:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role"><saml2:AttributeValue>` +
    `<hl7:Role xmlns:hl7="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="hl7:CE" code="${role.code}" codeSystem="${role.codeSystem}" displayName="${role.displayName}"/>` +
    `</saml2:AttributeValue></saml2:Attribute>` +
    hcid +
    (o.purposeOfUse
      ? `<saml2:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"><saml2:AttributeValue>` +
        `<hl7:PurposeOfUse xmlns:hl7="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="hl7:CE" code="${o.purposeOfUse.code}" codeSystem="${o.purposeOfUse.codeSystem}" displayName="${o.purposeOfUse.displayName}"/>` +
        `</saml2:AttributeValue></saml2:Attribute>`
      : '') +
    `</saml2:AttributeStatement></saml2:Assertion>`
  );
}

const ALGORITHMS = {
  sha256: {
    signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    digest: 'http://www.w3.org/2001/04/xmlenc#sha256',
  },
  /** What many deployed STSs still use (refused unless a policy allows SHA-1). */
  sha1: {
    signature: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
    digest: 'http://www.w3.org/2000/09/xmldsig#sha1',
  },
};

/** Signs the assertion (enveloped, exc-c14n, RSA-SHA256 unless told otherwise) with the IdP's key. */
export function signAssertion(
  xml: string,
  idp: Pick<TestIdp, 'key' | 'cert'>,
  hash: keyof typeof ALGORITHMS = 'sha256',
): string {
  const alg = ALGORITHMS[hash];
  const sig = new SignedXml({
    privateKey: idp.key,
    publicCert: idp.cert,
    signatureAlgorithm: alg.signature,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: "/*[local-name(.)='Assertion']",
    transforms: [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ],
    digestAlgorithm: alg.digest,
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: "/*/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

/** A wsse:Security header carrying the given assertions (and a wsu:Timestamp, as real peers send). */
export function securityHeader(...assertions: string[]): string {
  return (
    `<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" ` +
    `xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">` +
    `<wsu:Timestamp><wsu:Created>${iso(0)}</wsu:Created><wsu:Expires>${iso(300_000)}</wsu:Expires></wsu:Timestamp>` +
    assertions.join('') +
    `</wsse:Security>`
  );
}
