/** Directory settings for security (issue 6): xua, inboundLimits, consumers[].xua, identities. */
import { DirectoryError, INBOUND_LIMIT_DEFAULTS, readDirectory, settingsFromEnv } from '@xcai/shared';

const HOME = 'urn:oid:1.2.3';
const base = (extra: Record<string, unknown> = {}) => ({ homeCommunityId: HOME, ...extra });

function problems(raw: unknown): string[] {
  try {
    readDirectory(raw, 'test', '/etc/xcai');
    return [];
  } catch (e) {
    if (e instanceof DirectoryError) return e.problems;
    throw e;
  }
}

describe('directory: xua', () => {
  it('is absent by default; assertions are then optional everywhere', () => {
    const d = readDirectory(
      base({ communities: [{ homeCommunityId: 'urn:oid:1.2.4' }], consumers: [{ name: 'p' }] }),
    );
    expect(d.xua).toBeUndefined();
    expect(d.communities[0].xua).toBe('optional');
    expect(d.consumers[0].xua).toBe('optional');
  });

  it('reads IdP certificates (relative to the directory), audiences, clock skew, SHA-1 and issuers', () => {
    const d = readDirectory(
      base({
        xua: {
          idpCertificates: ['idp.pem', '/abs/idp2.pem'],
          audiences: ['urn:a', 'https://gw.example/'],
          clockSkewMs: 30_000,
          allowSha1: true,
          issuers: ['https://idp.example'],
        },
        consumers: [{ name: 'p', xua: 'required' }],
      }),
      'test',
      '/etc/xcai',
    );
    expect(d.xua).toEqual({
      idpCertificates: ['/etc/xcai/idp.pem', '/abs/idp2.pem'],
      audiences: ['urn:a', 'https://gw.example/'],
      clockSkewMs: 30_000,
      allowSha1: true,
      issuers: ['https://idp.example'],
    });
    expect(d.consumers[0].xua).toBe('required');
  });

  it('defaults: no audiences, 60 s skew, SHA-1 refused, any issuer', () => {
    const d = readDirectory(base({ xua: { idpCertificates: ['idp.pem'] } }), 'test', '/x');
    expect(d.xua).toEqual({
      idpCertificates: ['/x/idp.pem'],
      audiences: [],
      clockSkewMs: 60_000,
      allowSha1: false,
    });
  });

  it('names every bad entry', () => {
    expect(
      problems(base({ xua: { idpCertificates: [], clockSkewMs: -1, allowSha1: 'yes', audience: ['x'] } })),
    ).toEqual([
      'xua.audience: unknown setting',
      'xua.idpCertificates: must list at least one PEM file with an IdP certificate',
      'xua.clockSkewMs: must be an integer from 0 to 600000',
      'xua.allowSha1: must be true or false',
    ]);
    expect(
      problems(
        base({
          communities: [{ homeCommunityId: 'urn:oid:1.2.4', xua: 'required' }],
          consumers: [
            { name: 'p', xua: 'always' },
            { name: 'q', xua: 'required' },
          ],
        }),
      ),
    ).toEqual([
      'consumers[0].xua: must be "required" or "optional"',
      'communities[0].xua: is "required" but no top-level xua (IdP certificates) is configured',
      'consumers[1].xua: is "required" but no top-level xua (IdP certificates) is configured',
    ]);
  });
});

describe('directory: inboundLimits', () => {
  it('defaults when absent', () => {
    expect(readDirectory(base()).inboundLimits).toEqual(INBOUND_LIMIT_DEFAULTS);
    expect(INBOUND_LIMIT_DEFAULTS).toEqual({
      maxConcurrentRequests: 32,
      requestsPerSecond: 50,
      burst: 100,
      maxConnections: 128,
      headersTimeoutMs: 10_000,
      bodyIdleTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      handshakeTimeoutMs: 10_000,
      maxTrackedPeers: 10_000,
      maxHalfOpenPerAddress: 64,
      maxHalfOpen: 512,
      maxIdlePerAddress: 128,
      maxIdle: 1_024,
    });
  });

  it('reads the connection bounds and refuses totals below the per-address ones', () => {
    const d = readDirectory(
      base({ inboundLimits: { maxHalfOpenPerAddress: 8, maxHalfOpen: 16, maxIdle: 2000 } }),
    );
    expect(d.inboundLimits).toMatchObject({
      maxHalfOpenPerAddress: 8,
      maxHalfOpen: 16,
      maxIdlePerAddress: 128,
      maxIdle: 2000,
    });
    expect(() =>
      readDirectory(base({ inboundLimits: { maxHalfOpenPerAddress: 8, maxHalfOpen: 4 } })),
    ).toThrow(/maxHalfOpen: must not be smaller than maxHalfOpenPerAddress/);
    expect(() => readDirectory(base({ inboundLimits: { maxIdle: 0 } }))).toThrow(/maxIdle/);
  });

  it('reads top-level values and per-peer overrides', () => {
    const d = readDirectory(
      base({
        inboundLimits: {
          maxConcurrentRequests: 8,
          requestsPerSecond: 5,
          maxRequestBytes: '1MiB',
          headersTimeoutMs: 2000,
        },
        communities: [
          { homeCommunityId: 'urn:oid:1.2.4', inboundLimits: { burst: 3, maxRequestBytes: 1024 } },
        ],
        consumers: [{ name: 'p', inboundLimits: { maxConnections: 2 } }],
      }),
    );
    expect(d.inboundLimits).toEqual({
      ...INBOUND_LIMIT_DEFAULTS,
      maxConcurrentRequests: 8,
      requestsPerSecond: 5,
      maxRequestBytes: 1024 * 1024,
      headersTimeoutMs: 2000,
    });
    expect(d.communities[0].inboundLimits).toEqual({ burst: 3, maxRequestBytes: 1024 });
    expect(d.consumers[0].inboundLimits).toEqual({ maxConnections: 2 });
  });

  it('names every bad entry', () => {
    expect(
      problems(
        base({
          inboundLimits: {
            burst: 0,
            headersTimeoutMs: 5000,
            requestTimeoutMs: 1000,
            maxRequestBytes: 'lots',
            rate: 1,
          },
          communities: [{ homeCommunityId: 'urn:oid:1.2.4', inboundLimits: { headersTimeoutMs: 1 } }],
        }),
      ),
    ).toEqual([
      'communities[0].inboundLimits.headersTimeoutMs: unknown setting',
      'inboundLimits.rate: unknown setting',
      'inboundLimits.burst: must be an integer from 1 to 1000000',
      'inboundLimits.maxRequestBytes: must be a size such as 1048576, "512KiB" or "4GiB"',
      'inboundLimits.requestTimeoutMs: must not be shorter than headersTimeoutMs',
    ]);
  });
});

describe('directory: identities', () => {
  it('refuses the same certificate name for two communities (the mapping would be ambiguous)', () => {
    expect(
      problems(
        base({
          communities: [
            { homeCommunityId: 'urn:oid:1.2.4', identity: { trustAnchors: ['ca.pem'], names: ['gw-b'] } },
            {
              homeCommunityId: 'urn:oid:1.2.5',
              identity: { trustAnchors: ['ca.pem'], names: ['gw-c', 'gw-b'] },
            },
          ],
          consumers: [
            { name: 'p', identity: { names: ['pacs'] } },
            { name: 'q', identity: { names: ['pacs'] } },
          ],
        }),
      ),
    ).toEqual([
      'communities[1].identity.names[1]: "gw-b" is already the identity of communities[0]',
      'consumers[1].identity.names[0]: "pacs" is already the identity of consumers[0]',
    ]);
  });
});

describe('TLS settings from the environment', () => {
  const env = {
    XCAI_DIRECTORY: '/etc/xcai/directory.yaml',
    XCAI_TLS_CERT: '/tls/tls.crt',
    XCAI_TLS_KEY: '/tls/tls.key',
    XCAI_TLS_CA: '/tls/ca.crt, /tls/ca2.crt',
    XCAI_AUDIT_TRANSPORT: 'off',
  };
  const defaults = { port: 8443, clientAuth: 'required' as const };

  it('reads the cipher list and the lowest TLS version (default: TLS 1.2, AEAD list in code)', () => {
    expect(settingsFromEnv(env, defaults).tls).toEqual({
      cert: '/tls/tls.crt',
      key: '/tls/tls.key',
      ca: ['/tls/ca.crt', '/tls/ca2.crt'],
      clientAuth: 'required',
    });
    const s = settingsFromEnv(
      {
        ...env,
        XCAI_TLS_CIPHERS: 'TLS_AES_256_GCM_SHA384',
        XCAI_TLS_MIN_VERSION: 'TLSv1.3',
        XCAI_TLS_CLIENT_AUTH: 'optional',
      },
      defaults,
    );
    expect(s.tls).toMatchObject({
      ciphers: 'TLS_AES_256_GCM_SHA384',
      minVersion: 'TLSv1.3',
      clientAuth: 'optional',
    });
  });

  it('refuses TLS versions below 1.2 and unknown client-auth modes', () => {
    expect(() => settingsFromEnv({ ...env, XCAI_TLS_MIN_VERSION: 'TLSv1' }, defaults)).toThrow(
      'XCAI_TLS_MIN_VERSION must be TLSv1.2 or TLSv1.3',
    );
    expect(() => settingsFromEnv({ ...env, XCAI_TLS_CLIENT_AUTH: 'none' }, defaults)).toThrow(
      'XCAI_TLS_CLIENT_AUTH must be "required" or "optional"',
    );
  });
});
