import {
  readDirectory,
  checkHandover,
  handoverKey,
  senderMismatch,
  signHandover,
  type Caller,
} from '@xcai/shared';

describe('hand-over authentication between replicas', () => {
  const key = handoverKey({ secret: 'deployment-secret' }) as Buffer;
  const id = 'urn:uuid:0b7e3a1c-52b1-4c1e-9d55-7a1b2c3d4e5f';

  it('accepts what a replica of the same deployment signed for this owner', () => {
    expect(checkHandover(key, signHandover(key, id, 'owner-1'), id, 'owner-1')).toBeUndefined();
  });

  it.each([
    [
      'another secret',
      () => signHandover(handoverKey({ secret: 'other' }) as Buffer, id, 'owner-1'),
      id,
      'owner-1',
      /does not verify/,
    ],
    ['another owner', () => signHandover(key, id, 'owner-2'), id, 'owner-1', /does not verify/],
    [
      'another message',
      () => signHandover(key, id, 'owner-1'),
      'urn:uuid:00000000-0000-4000-8000-000000000000',
      'owner-1',
      /does not verify/,
    ],
    ['expired', () => signHandover(key, id, 'owner-1', -1), id, 'owner-1', /expired/],
    ['garbage', () => 'v1.x.y', id, 'owner-1', /malformed/],
    ['missing', () => undefined, id, 'owner-1', /missing/],
  ])('refuses a hand-over with %s', (_why, header, rel, self, reason) => {
    expect(checkHandover(key, header(), rel, self)).toMatch(reason);
  });

  it('refuses everything when no key is configured, and derives the same key from the same TLS key', () => {
    expect(checkHandover(undefined, signHandover(key, id, 'o'), id, 'o')).toMatch(/not configured/);
    expect(handoverKey({})).toBeUndefined();
    const a = handoverKey({
      tlsKey: Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
    });
    const b = handoverKey({ tlsKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' });
    expect(a?.equals(b as Buffer)).toBe(true);
    expect(a?.equals(key)).toBe(false);
  });
});

describe('who may answer for a community (R30)', () => {
  const dir = readDirectory({
    homeCommunityId: 'urn:oid:1.2.3',
    communities: [
      { homeCommunityId: 'urn:oid:1.2.4', identity: { names: ['rg-b.example'] } },
      { homeCommunityId: 'urn:oid:1.2.5', identity: { names: ['rg-c.example'] } },
      { homeCommunityId: 'urn:oid:1.2.6' },
    ],
  });
  const [b, c, d] = dir.communities;
  const cert = (name: string): Caller => ({
    remoteAddress: '10.0.0.1',
    certificate: { subject: `CN=${name}`, names: [name], fingerprint256: 'x' },
  });

  it('accepts the certificate of the community asked', () => {
    expect(senderMismatch(cert('rg-b.example'), b, b.homeCommunityId)).toBeUndefined();
    expect(senderMismatch({ remoteAddress: 'x', community: b }, b, b.homeCommunityId)).toBeUndefined();
  });

  it("refuses another community's certificate, a missing certificate, and a community gone from the directory", () => {
    expect(senderMismatch(cert('rg-c.example'), b, b.homeCommunityId)).toMatch(/does not belong/);
    expect(senderMismatch({ remoteAddress: 'x', community: c }, b, b.homeCommunityId)).toMatch(
      /sent by community urn:oid:1\.2\.5/,
    );
    expect(senderMismatch({ remoteAddress: 'x' }, b, b.homeCommunityId)).toMatch(
      /must present its certificate/,
    );
    expect(senderMismatch(cert('rg-b.example'), undefined, 'urn:oid:9.9')).toMatch(/not in the directory/);
  });

  it('without an identity in the directory there is nothing to compare (plain HTTP demo)', () => {
    expect(senderMismatch({ remoteAddress: '127.0.0.1' }, d, d.homeCommunityId)).toBeUndefined();
  });
});
