/** Certificate names, trust-anchor membership and the identity → community mapping. */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readDirectory } from '@xcai/shared';
import {
  certificateNames,
  chainsTo,
  parsePemCertificates,
  splitSubjectAltName,
} from '@xcai/shared/src/security/certificates';
import { PeerIdentities, type PresentedCertificate } from '@xcai/shared/src/security/identities';
import { makePki, type TestPki } from '../support/certs';

let one: TestPki;
let two: TestPki;

beforeAll(() => {
  one = makePki(['gw-a', 'gw-b:DNS:gw-b.example,URI:urn:oid:1.2.4,IP:10.0.0.5'], 'one');
  two = makePki(['gw-a'], 'two');
});
afterAll(() => {
  one?.remove();
  two?.remove();
});

const x509 = (file: string) => new X509Certificate(readFileSync(file));
const presented = (pki: TestPki, name: string, cn = name): PresentedCertificate => {
  const c = x509(pki.cert(name));
  return {
    subject: `CN=${cn}`,
    names: certificateNames({ subject: { CN: cn } as never, subjectaltname: c.subjectAltName }),
    fingerprint256: c.fingerprint256,
    chain: [c],
  };
};

describe('certificate names', () => {
  it('reads CN and DNS / URI / IP subjectAltNames', () => {
    const c = x509(one.cert('gw-b'));
    expect(certificateNames({ subject: { CN: 'gw-b' } as never, subjectaltname: c.subjectAltName })).toEqual([
      'gw-b',
      'gw-b.example',
      'urn:oid:1.2.4',
      '10.0.0.5',
    ]);
  });

  it('splits quoted values with commas and ignores other kinds', () => {
    expect(splitSubjectAltName('DNS:a, email:x@y, URI:"urn:a,b", IP Address:::1')).toEqual([
      'a',
      'urn:a,b',
      '::1',
    ]);
  });

  it('reads PEM bundles and refuses files without a certificate', () => {
    const bundle = readFileSync(one.ca, 'utf8') + readFileSync(two.ca, 'utf8');
    expect(parsePemCertificates(bundle)).toHaveLength(2);
    expect(() => parsePemCertificates('nothing here', 'x.pem')).toThrow('x.pem holds no PEM certificate');
  });
});

describe('trust anchors', () => {
  it("tells which CA issued a certificate, even with the other CA's same-named certificate", () => {
    const caOne = x509(one.ca);
    const caTwo = x509(two.ca);
    expect(chainsTo([x509(one.cert('gw-a'))], [caOne])).toBe(true);
    expect(chainsTo([x509(one.cert('gw-a'))], [caTwo])).toBe(false);
    expect(chainsTo([x509(two.cert('gw-a'))], [caOne, caTwo])).toBe(true);
    expect(chainsTo([caOne], [caOne])).toBe(true);
  });
});

describe('PeerIdentities', () => {
  const dir = () =>
    readDirectory({
      homeCommunityId: 'urn:oid:1.2.3',
      communities: [
        { homeCommunityId: 'urn:oid:1.2.4', identity: { trustAnchors: [one.ca], names: ['gw-b.example'] } },
        { homeCommunityId: 'urn:oid:1.2.5', identity: { trustAnchors: [one.ca], names: ['gw-a'] } },
        { homeCommunityId: 'urn:oid:1.2.6', identity: { names: ['gw-any-ca'] } },
      ],
      consumers: [{ name: 'pacs', identity: { trustAnchors: [two.ca], names: ['gw-a'] } }],
    });

  it('maps a certificate by name and anchor; the same name from another anchor is not the same peer', () => {
    const ids = new PeerIdentities(dir(), 'initiating');
    expect(ids.communityFor(presented(one, 'gw-b'))?.homeCommunityId).toBe('urn:oid:1.2.4');
    expect(ids.communityFor(presented(one, 'gw-a'))?.homeCommunityId).toBe('urn:oid:1.2.5');
    expect(ids.communityFor(presented(two, 'gw-a'))).toBeUndefined();
    expect(ids.consumerFor(presented(two, 'gw-a'))?.name).toBe('pacs');
    expect(ids.consumerFor(presented(one, 'gw-a'))).toBeUndefined();
    // An identity without trust anchors accepts any anchor of the server, by name.
    expect(ids.communityFor(presented(two, 'gw-a', 'gw-any-ca'))?.homeCommunityId).toBe('urn:oid:1.2.6');
    expect(ids.communityFor(undefined)).toBeUndefined();
    // Each anchor file is offered to TLS once.
    expect(ids.trustAnchorPems).toHaveLength(2);
  });

  it('names the file when a trust anchor cannot be read', () => {
    const d = readDirectory({
      homeCommunityId: 'urn:oid:1.2.3',
      communities: [
        {
          homeCommunityId: 'urn:oid:1.2.4',
          identity: { trustAnchors: ['/nonexistent/ca.pem'], names: ['x'] },
        },
      ],
    });
    expect(() => new PeerIdentities(d, 'responding')).toThrow('cannot read /nonexistent/ca.pem');
  });
});
