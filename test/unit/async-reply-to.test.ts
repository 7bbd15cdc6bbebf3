import {
  matchReplyTo,
  parseReplyToPattern,
  readDirectory,
  replyToPatternsFor,
  type Caller,
  type Gateway,
} from '@xcai/shared';

describe('ReplyTo allow-list', () => {
  const loopback = ['http://127.0.0.1:*'];
  const exact = ['https://ig.example.org:8443/async', 'http://[::1]:*/reply/'];

  it.each([
    ['http://127.0.0.1:8080/reply', loopback, 'http://127.0.0.1:8080/reply'],
    ['http://127.0.0.1/reply', loopback, 'http://127.0.0.1/reply'],
    ['HTTP://127.0.0.1:9/x/../y', loopback, 'http://127.0.0.1:9/y'],
    ['https://ig.example.org:8443/async', exact, 'https://ig.example.org:8443/async'],
    ['https://IG.example.org:8443/async/receiver', exact, 'https://ig.example.org:8443/async/receiver'],
    ['http://[::1]:5000/reply/x', exact, 'http://[::1]:5000/reply/x'],
  ])('allows %s', (url, patterns, normalised) => {
    expect(matchReplyTo(patterns, url)).toBe(normalised);
  });

  it.each([
    ['credentials before the allowed host', 'http://127.0.0.1:8080@evil.example/'],
    ['credentials with the allowed host', 'http://user@127.0.0.1:8080/'],
    ['allowed host as a subdomain', 'http://127.0.0.1.evil.example/'],
    ['unicode full stop', 'http://127.0.0.1\u3002evil.example/'],
    ['fullwidth digits', 'http://１２７.0.0.1/'],
    ['IDN look-alike', 'https://ig.exаmple.org:8443/async'],
    ['integer host', 'http://2130706433:80/'],
    ['percent-encoded host', 'http://127.0.0.%31:80/'],
    ['backslash', 'http://127.0.0.1:80\\@evil.example/'],
    ['fragment', 'http://127.0.0.1:80/#x'],
    ['other scheme', 'ftp://127.0.0.1/'],
    ['javascript', 'javascript:alert(1)'],
    ['whitespace', ' http://127.0.0.1/'],
    ['anonymous', 'http://www.w3.org/2005/08/addressing/anonymous'],
    ['empty', ''],
  ])('refuses %s on a loopback pattern', (_why, url) => {
    expect(matchReplyTo(loopback, url)).toBeUndefined();
  });

  it.each([
    ['wrong port', 'https://ig.example.org/async'],
    ['wrong scheme', 'http://ig.example.org:8443/async'],
    ['path outside the prefix', 'https://ig.example.org:8443/other'],
    ['path sharing only a string prefix', 'https://ig.example.org:8443/async-evil'],
    ['dot segments out of the prefix', 'https://ig.example.org:8443/async/../admin'],
    ['encoded dot segments out of the prefix', 'https://ig.example.org:8443/async/%2e%2e/admin'],
    ['sibling of a prefix ending in /', 'http://[::1]:5000/replyx'],
  ])('refuses %s on exact patterns', (_why, url) => {
    expect(matchReplyTo(exact, url)).toBeUndefined();
  });

  it('parses patterns and rejects those that could never match safely', () => {
    expect(parseReplyToPattern('http://127.0.0.1:*')).toEqual({
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: '*',
      path: '/',
    });
    expect(parseReplyToPattern('https://h.example/p')).toEqual({
      protocol: 'https:',
      hostname: 'h.example',
      port: '443',
      path: '/p',
    });
    for (const bad of [
      'ftp://h/',
      'http://u@h/',
      'http://h/?q',
      'http://h/#f',
      'http://ｈ.example/',
      'h.example',
      'http://h:*x/',
    ]) {
      expect([bad, parseReplyToPattern(bad)]).toEqual([bad, undefined]);
    }
  });

  it('the directory refuses such patterns at load', () => {
    const raw = (replyTo: string[]) => ({
      homeCommunityId: 'urn:oid:1.2.3',
      consumers: [{ name: 'c', replyTo }],
    });
    expect(readDirectory(raw(['http://127.0.0.1:*'])).consumers[0].replyTo).toEqual(['http://127.0.0.1:*']);
    expect(() => readDirectory(raw(['http://user@127.0.0.1:*']))).toThrow(/consumers\[0\]\.replyTo\[0\]/);
    expect(() => readDirectory(raw(['http://127.0.0.1/x?y=1']))).toThrow(/replyTo/);
  });
});

describe('which ReplyTo patterns a caller gets', () => {
  const dir = readDirectory({
    homeCommunityId: 'urn:oid:1.2.3',
    consumers: [
      { name: 'open', replyTo: ['http://127.0.0.1:*'] },
      { name: 'pacs', identity: { names: ['pacs.example'] }, replyTo: ['https://pacs.example/async'] },
    ],
    communities: [
      {
        homeCommunityId: 'urn:oid:1.2.4',
        identity: { names: ['rg-b.example'] },
        replyTo: ['https://ig-b.example/async-response'],
      },
      { homeCommunityId: 'urn:oid:1.2.5', acceptRequests: false, replyTo: ['https://ig-c.example/'] },
    ],
  });
  const gw = (role: 'initiating' | 'responding') => ({ role, directory: dir }) as unknown as Gateway;
  const cert = (name: string): Caller => ({
    remoteAddress: '10.0.0.1',
    certificate: { subject: `CN=${name}`, names: [name], fingerprint256: 'x' },
  });

  it('initiating side: entries without identity for anyone, others by certificate name', () => {
    expect(replyToPatternsFor(gw('initiating'), { remoteAddress: '1.2.3.4' })).toEqual([
      'http://127.0.0.1:*',
    ]);
    expect(replyToPatternsFor(gw('initiating'), cert('pacs.example'))).toEqual([
      'http://127.0.0.1:*',
      'https://pacs.example/async',
    ]);
    expect(replyToPatternsFor(gw('initiating'), { remoteAddress: 'x', consumer: dir.consumers[1] })).toEqual([
      'https://pacs.example/async',
    ]);
  });

  it('responding side: the community the certificate maps to, never one that may not send requests', () => {
    expect(replyToPatternsFor(gw('responding'), { remoteAddress: '1.2.3.4' })).toEqual([]);
    expect(replyToPatternsFor(gw('responding'), cert('rg-b.example'))).toEqual([
      'https://ig-b.example/async-response',
    ]);
    expect(replyToPatternsFor(gw('responding'), cert('rg-x.example'))).toEqual([]);
  });
});
