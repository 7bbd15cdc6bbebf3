import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseReplyToPattern } from '../async/reply-to';
import {
  readBreakGlass,
  readCommunityConsent,
  readConsent,
  readDocumentPolicy,
  readRevocation,
} from './policy';
import { isOid } from '../util/oid';
import { readCommunityIdentity, readPatientIdentitySettings } from './patient-identity';
import type {
  ArchiveSettings,
  Directory,
  Endpoint,
  InboundLimits,
  LocalConsumer,
  LocalEndpoint,
  PeerIdentity,
  PeerLimits,
  PublishSettings,
  RemoteCommunity,
  XuaSettings,
} from './types';

export class DirectoryError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`community directory ${file} is not valid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'DirectoryError';
  }
}

export { isOid };

/** `urn:oid:` + an OID of at most 64 characters (ITI TF-2 3.38, ITI38-004). */
export function isHomeCommunityId(v: string): boolean {
  return v.startsWith('urn:oid:') && isOid(v.slice(8));
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parses 1048576, "512KiB", "4 GiB", "16MB". */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return Math.floor(v);
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number(m[1]) * unit);
}

/** Defaults of `inboundLimits` (see InboundLimits in types.ts). */
export const INBOUND_LIMIT_DEFAULTS: InboundLimits = {
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
};

/** Bounds on connections that have not proven anything yet (security/connection-guard.ts). */
const CONNECTION_BOUNDS = ['maxHalfOpenPerAddress', 'maxHalfOpen', 'maxIdlePerAddress', 'maxIdle'] as const;

/** Default of `xua.clockSkewMs`. */
export const XUA_DEFAULT_CLOCK_SKEW_MS = 60_000;

const ENDPOINT_DEFAULTS = {
  timeoutMs: 10_000,
  maxConcurrent: 16,
  queryMaxResponseBytes: 16 * 1024 ** 2,
  retrieveMaxResponseBytes: 4 * 1024 ** 3,
};

type Obj = Record<string, unknown>;

export class Reader {
  readonly problems: string[] = [];
  constructor(private readonly baseDir: string) {}

  problem(path: string, msg: string): void {
    this.problems.push(`${path}: ${msg}`);
  }

  obj(v: unknown, path: string, required = true): Obj | undefined {
    if (v === undefined || v === null) {
      if (required) this.problem(path, 'is required');
      return undefined;
    }
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.problem(path, 'must be a mapping');
      return undefined;
    }
    return v as Obj;
  }

  arr(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.problem(path, 'must be a list');
      return [];
    }
    return v;
  }

  str(v: unknown, path: string, required = true): string | undefined {
    if (v === undefined || v === null) {
      if (required) this.problem(path, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || v.trim() === '') {
      this.problem(path, 'must be a non-empty string');
      return undefined;
    }
    return v.trim();
  }

  int(v: unknown, path: string, dflt: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.problem(path, `must be an integer from ${min} to ${max}`);
      return dflt;
    }
    return v;
  }

  bool(v: unknown, path: string, dflt: boolean): boolean {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') {
      this.problem(path, 'must be true or false');
      return dflt;
    }
    return v;
  }

  size(v: unknown, path: string, dflt: number): number {
    if (v === undefined || v === null) return dflt;
    const n = parseSize(v);
    if (n === undefined) {
      this.problem(path, 'must be a size such as 1048576, "512KiB" or "4GiB"');
      return dflt;
    }
    return n;
  }

  home(v: unknown, path: string): string | undefined {
    const s = this.str(v, path);
    if (s !== undefined && !isHomeCommunityId(s)) {
      this.problem(
        path,
        `"${s}" is not a homeCommunityId (urn:oid: followed by an OID of at most 64 characters)`,
      );
      return undefined;
    }
    return s;
  }

  oid(v: unknown, path: string): string | undefined {
    const s = this.str(v, path);
    if (s !== undefined && !isOid(s)) {
      this.problem(path, `"${s}" is not an OID of at most 64 characters`);
      return undefined;
    }
    return s;
  }

  url(v: unknown, path: string): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    try {
      const u = new URL(s);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      if (u.username || u.password) {
        this.problem(path, 'must not carry credentials');
        return undefined;
      }
      return s;
    } catch {
      this.problem(path, `"${s}" is not an http(s) URL`);
      return undefined;
    }
  }

  file(v: unknown, path: string): string | undefined {
    const s = this.str(v, path);
    return s === undefined ? undefined : isAbsolute(s) ? s : resolve(this.baseDir, s);
  }

  endpoint(v: unknown, path: string, maxResponseDefault: number): Endpoint | undefined {
    const o = typeof v === 'string' ? { url: v } : this.obj(v, path, false);
    if (!o) return undefined;
    const url = this.url(o.url, `${path}.url`);
    if (!url) return undefined;
    return {
      url,
      timeoutMs: this.int(o.timeoutMs, `${path}.timeoutMs`, ENDPOINT_DEFAULTS.timeoutMs, 1, 3_600_000),
      maxConcurrent: this.int(
        o.maxConcurrent,
        `${path}.maxConcurrent`,
        ENDPOINT_DEFAULTS.maxConcurrent,
        1,
        10_000,
      ),
      maxResponseBytes: this.size(o.maxResponseBytes, `${path}.maxResponseBytes`, maxResponseDefault),
    };
  }

  localEndpoint(v: unknown, path: string, maxResponseDefault: number): LocalEndpoint | undefined {
    const o = this.obj(v, path);
    if (!o) return undefined;
    const repositoryUniqueId = this.oid(o.repositoryUniqueId, `${path}.repositoryUniqueId`);
    const ep = this.endpoint(o, path, maxResponseDefault);
    return ep && repositoryUniqueId ? { ...ep, repositoryUniqueId } : undefined;
  }

  archive(v: unknown, path: string): ArchiveSettings | undefined {
    const o = this.obj(v, path, false);
    if (!o) return undefined;
    this.known(o, path, [
      'url',
      'repositoryUniqueId',
      'auth',
      'ca',
      'timeoutMs',
      'maxConcurrent',
      'anySyntax',
      'seriesThreshold',
    ]);
    const auth = this.obj(o.auth, `${path}.auth`, false);
    if (auth) this.known(auth, `${path}.auth`, ['basicFile', 'bearerFile']);
    if (auth?.basicFile && auth.bearerFile) this.problem(`${path}.auth`, 'basicFile or bearerFile, not both');
    const url = this.url(o.url, `${path}.url`);
    const repositoryUniqueId = this.oid(o.repositoryUniqueId, `${path}.repositoryUniqueId`);
    const a: ArchiveSettings = {
      url: url ?? '',
      repositoryUniqueId: repositoryUniqueId ?? '',
      ca: this.arr(o.ca, `${path}.ca`).flatMap((c, i) => this.file(c, `${path}.ca[${i}]`) ?? []),
      timeoutMs: this.int(o.timeoutMs, `${path}.timeoutMs`, 30_000, 1, 3_600_000),
      maxConcurrent: this.int(o.maxConcurrent, `${path}.maxConcurrent`, 4, 1, 256),
      anySyntax: this.bool(o.anySyntax, `${path}.anySyntax`, false),
      seriesThreshold: this.int(o.seriesThreshold, `${path}.seriesThreshold`, 16, 1, 1_000_000),
    };
    if (auth?.basicFile) a.auth = { basicFile: this.file(auth.basicFile, `${path}.auth.basicFile`) };
    if (auth?.bearerFile) a.auth = { bearerFile: this.file(auth.bearerFile, `${path}.auth.bearerFile`) };
    return a;
  }

  publish(v: unknown, path: string): PublishSettings | undefined {
    const o = this.obj(v, path, false);
    if (!o) return undefined;
    this.known(o, path, [
      'repository',
      'intervalMs',
      'stateFile',
      'assigningAuthority',
      'issuers',
      'sourceId',
      'languageCode',
      'institution',
    ]);
    const repository = this.endpoint(o.repository, `${path}.repository`, 1 << 20);
    if (!repository) this.problem(`${path}.repository`, 'is required');
    const issuers: Record<string, string> = {};
    for (const [k, val] of Object.entries(this.obj(o.issuers, `${path}.issuers`, false) ?? {}))
      issuers[k] = this.oid(val, `${path}.issuers.${k}`) ?? '';
    return {
      repository: repository ?? { url: '', timeoutMs: 0, maxConcurrent: 1, maxResponseBytes: 0 },
      intervalMs: this.int(o.intervalMs, `${path}.intervalMs`, 60_000, 0, 86_400_000),
      stateFile: this.file(o.stateFile, `${path}.stateFile`) ?? '',
      assigningAuthority: this.oid(o.assigningAuthority, `${path}.assigningAuthority`) ?? '',
      issuers,
      sourceId: this.oid(o.sourceId, `${path}.sourceId`) ?? '',
      languageCode: this.str(o.languageCode, `${path}.languageCode`, false) ?? 'en-US',
      institution: this.str(o.institution, `${path}.institution`, false),
    };
  }

  identity(v: unknown, path: string): PeerIdentity | undefined {
    const o = this.obj(v, path, false);
    if (!o) return undefined;
    const trustAnchors = this.arr(o.trustAnchors, `${path}.trustAnchors`)
      .map((f, i) => this.file(f, `${path}.trustAnchors[${i}]`))
      .filter((f): f is string => f !== undefined);
    const names = this.arr(o.names, `${path}.names`)
      .map((n, i) => this.str(n, `${path}.names[${i}]`))
      .filter((n): n is string => n !== undefined);
    if (names.length === 0) this.problem(`${path}.names`, 'must list at least one certificate name');
    return { trustAnchors, names };
  }

  /**
   * Per-peer limits (communities[].inboundLimits, consumers[].inboundLimits): any of
   * maxConcurrentRequests, requestsPerSecond, burst, maxConnections (integers ≥ 1) and
   * maxRequestBytes (a size). Absent keys fall back to the top-level `inboundLimits`.
   */
  peerLimits(v: unknown, path: string, checkKeys = true): Partial<PeerLimits> | undefined {
    const o = this.obj(v, path, false);
    if (!o) return undefined;
    if (checkKeys)
      this.known(o, path, [
        'maxConcurrentRequests',
        'requestsPerSecond',
        'burst',
        'maxConnections',
        'maxRequestBytes',
      ]);
    const out: Partial<PeerLimits> = {};
    const ints = ['maxConcurrentRequests', 'requestsPerSecond', 'burst', 'maxConnections'] as const;
    for (const k of ints) if (o[k] !== undefined) out[k] = this.int(o[k], `${path}.${k}`, 1, 1, 1_000_000);
    if (o.maxRequestBytes !== undefined)
      out.maxRequestBytes = this.size(o.maxRequestBytes, `${path}.maxRequestBytes`, 0);
    return out;
  }

  /**
   * Top-level `inboundLimits`: the per-peer defaults above plus headersTimeoutMs, bodyIdleTimeoutMs,
   * requestTimeoutMs, handshakeTimeoutMs (100 … 3 600 000; requestTimeoutMs ≥ headersTimeoutMs),
   * maxTrackedPeers and the connection bounds maxHalfOpenPerAddress, maxHalfOpen, maxIdlePerAddress,
   * maxIdle (totals not below the per-address ones). Defaults: INBOUND_LIMIT_DEFAULTS; maxRequestBytes defaults to the process
   * setting XCAI_MAX_REQUEST_BYTES, which it can only lower.
   */
  inboundLimits(v: unknown, path: string): InboundLimits {
    const o = this.obj(v, path, false) ?? {};
    const d = INBOUND_LIMIT_DEFAULTS;
    const timeouts = [
      'headersTimeoutMs',
      'bodyIdleTimeoutMs',
      'requestTimeoutMs',
      'handshakeTimeoutMs',
    ] as const;
    this.known(o, path, [
      'maxConcurrentRequests',
      'requestsPerSecond',
      'burst',
      'maxConnections',
      'maxRequestBytes',
      'maxTrackedPeers',
      ...CONNECTION_BOUNDS,
      ...timeouts,
    ]);
    const peer = this.peerLimits(o, path, false) ?? {};
    const out: InboundLimits = { ...d, ...peer };
    for (const k of timeouts) out[k] = this.int(o[k], `${path}.${k}`, d[k], 100, 3_600_000);
    out.maxTrackedPeers = this.int(
      o.maxTrackedPeers,
      `${path}.maxTrackedPeers`,
      d.maxTrackedPeers,
      10,
      10_000_000,
    );
    for (const k of CONNECTION_BOUNDS) out[k] = this.int(o[k], `${path}.${k}`, d[k], 1, 1_000_000);
    if (out.maxHalfOpen < out.maxHalfOpenPerAddress)
      this.problem(`${path}.maxHalfOpen`, 'must not be smaller than maxHalfOpenPerAddress');
    if (out.maxIdle < out.maxIdlePerAddress)
      this.problem(`${path}.maxIdle`, 'must not be smaller than maxIdlePerAddress');
    if (out.requestTimeoutMs < out.headersTimeoutMs)
      this.problem(`${path}.requestTimeoutMs`, 'must not be shorter than headersTimeoutMs');
    return out;
  }

  /**
   * Top-level `xua`: idpCertificates (PEM files, at least one), audiences (strings, default []),
   * clockSkewMs (0 … 600 000, default 60 000), allowSha1 (default false), issuers (optional).
   */
  xua(v: unknown, path: string): XuaSettings | undefined {
    const o = this.obj(v, path, false);
    if (!o) return undefined;
    this.known(o, path, ['idpCertificates', 'audiences', 'clockSkewMs', 'allowSha1', 'issuers']);
    const idpCertificates = this.arr(o.idpCertificates, `${path}.idpCertificates`)
      .map((f, i) => this.file(f, `${path}.idpCertificates[${i}]`))
      .filter((f): f is string => f !== undefined);
    if (idpCertificates.length === 0)
      this.problem(`${path}.idpCertificates`, 'must list at least one PEM file with an IdP certificate');
    const strings = (k: string) =>
      this.arr(o[k], `${path}.${k}`)
        .map((a, i) => this.str(a, `${path}.${k}[${i}]`))
        .filter((a): a is string => a !== undefined);
    const out: XuaSettings = {
      idpCertificates,
      audiences: strings('audiences'),
      clockSkewMs: this.int(o.clockSkewMs, `${path}.clockSkewMs`, XUA_DEFAULT_CLOCK_SKEW_MS, 0, 600_000),
      allowSha1: this.bool(o.allowSha1, `${path}.allowSha1`, false),
    };
    if (o.issuers !== undefined) out.issuers = strings('issuers');
    return out;
  }

  xuaPolicy(v: unknown, path: string): 'required' | 'optional' {
    const x = v ?? 'optional';
    if (x !== 'required' && x !== 'optional') this.problem(path, 'must be "required" or "optional"');
    return x === 'required' ? 'required' : 'optional';
  }

  known(o: Obj, path: string, keys: string[]): void {
    for (const k of Object.keys(o)) if (!keys.includes(k)) this.problem(`${path}.${k}`, 'unknown setting');
  }

  replyTo(v: unknown, path: string): string[] {
    return this.arr(v, path)
      .map((p, i) => {
        const s = this.str(p, `${path}[${i}]`);
        if (s && !parseReplyToPattern(s)) {
          this.problem(
            `${path}[${i}]`,
            `"${s}" must be an http(s) URL prefix, ASCII, without credentials, query or fragment (a port may be "*")`,
          );
          return undefined;
        }
        return s;
      })
      .filter((s): s is string => s !== undefined);
  }
}

/** Validates a parsed directory object. `baseDir` resolves relative file paths. */
export function readDirectory(raw: unknown, file = '<inline>', baseDir = process.cwd()): Directory {
  const r = new Reader(baseDir);
  const root = r.obj(raw, '(root)') ?? {};
  const homeCommunityId = r.home(root.homeCommunityId, 'homeCommunityId');
  const local = r.obj(root.local, 'local', false) ?? {};
  const registry = r.endpoint(local.registry, 'local.registry', ENDPOINT_DEFAULTS.queryMaxResponseBytes);
  const repositories = r
    .arr(local.repositories, 'local.repositories')
    .map((e, i) => r.localEndpoint(e, `local.repositories[${i}]`, ENDPOINT_DEFAULTS.retrieveMaxResponseBytes))
    .filter((e): e is LocalEndpoint => e !== undefined);
  const imagingDocumentSources = r
    .arr(local.imagingDocumentSources, 'local.imagingDocumentSources')
    .map((e, i) =>
      r.localEndpoint(e, `local.imagingDocumentSources[${i}]`, ENDPOINT_DEFAULTS.retrieveMaxResponseBytes),
    )
    .filter((e): e is LocalEndpoint => e !== undefined);
  const patientDemographicsSupplier = r.endpoint(
    local.patientDemographicsSupplier,
    'local.patientDemographicsSupplier',
    ENDPOINT_DEFAULTS.queryMaxResponseBytes,
  );
  for (const [list, path] of [
    [repositories, 'local.repositories'],
    [imagingDocumentSources, 'local.imagingDocumentSources'],
  ] as const) {
    const seen = new Set<string>();
    list.forEach((e, i) => {
      if (seen.has(e.repositoryUniqueId))
        r.problem(`${path}[${i}].repositoryUniqueId`, `duplicate ${e.repositoryUniqueId}`);
      seen.add(e.repositoryUniqueId);
    });
  }

  const consent = readConsent(r, root.consent, 'consent');
  if (consent?.source === 'bppc' && !registry)
    r.problem('consent.source', '"bppc" reads the local registry: local.registry is required');
  const archive = r.archive(local.archive, 'local.archive');
  const publish = r.publish(local.publish, 'local.publish');
  const communities: RemoteCommunity[] = [];
  const seenHomes = new Set<string>();
  r.arr(root.communities, 'communities').forEach((c, i) => {
    const path = `communities[${i}]`;
    const o = r.obj(c, path);
    if (!o) return;
    const home = r.home(o.homeCommunityId, `${path}.homeCommunityId`);
    if (home) {
      if (home === homeCommunityId) r.problem(`${path}.homeCommunityId`, 'is our own homeCommunityId');
      if (seenHomes.has(home)) r.problem(`${path}.homeCommunityId`, `duplicate ${home}`);
      seenHomes.add(home);
    }
    const eps = r.obj(o.endpoints, `${path}.endpoints`, false) ?? {};
    for (const k of Object.keys(eps)) {
      if (!['iti38', 'iti39', 'rad75', 'iti55'].includes(k))
        r.problem(`${path}.endpoints.${k}`, 'unknown endpoint (iti38, iti39, rad75, iti55)');
    }
    const iti55 = r.endpoint(eps.iti55, `${path}.endpoints.iti55`, ENDPOINT_DEFAULTS.queryMaxResponseBytes);
    const patientIdentity = readCommunityIdentity(r, o.patientIdentity, `${path}.patientIdentity`, { iti55 });
    if (patientIdentity?.mode === 'xcpd' && !patientDemographicsSupplier)
      r.problem(
        `${path}.patientIdentity`,
        'the xcpd mode needs local.patientDemographicsSupplier (ITI-47) for the demographics it sends',
      );
    const xua = r.xuaPolicy(o.xua, `${path}.xua`);
    const limits = r.peerLimits(o.inboundLimits, `${path}.inboundLimits`);
    const communityConsent = readCommunityConsent(r, o.consent, `${path}.consent`, consent);
    const documents = readDocumentPolicy(r, o.documents, `${path}.documents`);
    communities.push({
      homeCommunityId: home ?? '',
      name: r.str(o.name, `${path}.name`, false) ?? home ?? `community ${i}`,
      endpoints: {
        iti38: r.endpoint(eps.iti38, `${path}.endpoints.iti38`, ENDPOINT_DEFAULTS.queryMaxResponseBytes),
        iti39: r.endpoint(eps.iti39, `${path}.endpoints.iti39`, ENDPOINT_DEFAULTS.retrieveMaxResponseBytes),
        rad75: r.endpoint(eps.rad75, `${path}.endpoints.rad75`, ENDPOINT_DEFAULTS.retrieveMaxResponseBytes),
        ...(iti55 ? { iti55 } : {}),
      },
      ...(patientIdentity ? { patientIdentity } : {}),
      maxDocumentsPerRequest: r.int(
        o.maxDocumentsPerRequest,
        `${path}.maxDocumentsPerRequest`,
        100,
        1,
        100_000,
      ),
      async: r.bool(o.async, `${path}.async`, false),
      identity: r.identity(o.identity, `${path}.identity`),
      acceptRequests: r.bool(o.acceptRequests, `${path}.acceptRequests`, true),
      replyTo: r.replyTo(o.replyTo, `${path}.replyTo`),
      xua,
      ...(limits ? { inboundLimits: limits } : {}),
      ...(communityConsent ? { consent: communityConsent } : {}),
      ...(documents ? { documents } : {}),
    });
  });

  const consumers: LocalConsumer[] = r.arr(root.consumers, 'consumers').flatMap((c, i) => {
    const path = `consumers[${i}]`;
    const o = r.obj(c, path);
    if (!o) return [];
    const limits = r.peerLimits(o.inboundLimits, `${path}.inboundLimits`);
    return [
      {
        name: r.str(o.name, `${path}.name`) ?? `consumer ${i}`,
        identity: r.identity(o.identity, `${path}.identity`),
        replyTo: r.replyTo(o.replyTo, `${path}.replyTo`),
        xua: r.xuaPolicy(o.xua, `${path}.xua`),
        ...(limits ? { inboundLimits: limits } : {}),
      },
    ];
  });
  checkIdentityNames(r, communities, 'communities');
  checkIdentityNames(r, consumers, 'consumers');

  const xua = r.xua(root.xua, 'xua');
  if (!xua) {
    communities.forEach((c, i) => {
      if (c.xua === 'required')
        r.problem(
          `communities[${i}].xua`,
          'is "required" but no top-level xua (IdP certificates) is configured',
        );
    });
    consumers.forEach((c, i) => {
      if (c.xua === 'required')
        r.problem(
          `consumers[${i}].xua`,
          'is "required" but no top-level xua (IdP certificates) is configured',
        );
    });
  }
  const inboundLimits = r.inboundLimits(root.inboundLimits, 'inboundLimits');
  const breakGlass =
    root.breakGlass !== undefined || consent ? readBreakGlass(r, root.breakGlass, 'breakGlass') : undefined;
  communities.forEach((c, i) => {
    if (c.consent?.breakGlass && !xua)
      r.problem(
        `communities[${i}].consent.breakGlass`,
        'needs a top-level xua: break-glass is asked for by a validated XUA PurposeOfUse',
      );
  });
  const revocation = readRevocation(r, root.revocation, 'revocation');
  communities.forEach((c, i) => {
    if (c.documents && !registry)
      r.problem(
        `communities[${i}].documents`,
        'is checked against the local registry: local.registry is required',
      );
  });
  const patientIdentity = readPatientIdentitySettings(r, root.patientIdentity, 'patientIdentity');

  const policy = r.obj(root.policy, 'policy', false) ?? {};
  const unknownPatient = policy.unknownPatient ?? 'empty-success';
  if (unknownPatient !== 'empty-success' && unknownPatient !== 'XDSUnknownPatientId') {
    r.problem('policy.unknownPatient', 'must be "empty-success" or "XDSUnknownPatientId"');
  }
  const known = [
    'homeCommunityId',
    'name',
    'deadlineMs',
    'local',
    'communities',
    'consumers',
    'policy',
    'xua',
    'inboundLimits',
    'consent',
    'breakGlass',
    'revocation',
    'patientIdentity',
  ];
  for (const k of Object.keys(root)) if (!known.includes(k)) r.problem(k, 'unknown setting');

  const name = r.str(root.name, 'name', false) ?? homeCommunityId ?? '';
  const deadlineMs = r.int(root.deadlineMs, 'deadlineMs', 30_000, 100, 3_600_000);
  if (r.problems.length) throw new DirectoryError(file, r.problems);
  return {
    homeCommunityId: homeCommunityId ?? '',
    name,
    deadlineMs,
    local: {
      registry,
      repositories,
      imagingDocumentSources,
      ...(patientDemographicsSupplier ? { patientDemographicsSupplier } : {}),
      ...(archive ? { archive } : {}),
      ...(publish ? { publish } : {}),
    },
    communities,
    consumers,
    policy: {
      unknownPatient: unknownPatient === 'XDSUnknownPatientId' ? 'XDSUnknownPatientId' : 'empty-success',
    },
    ...(xua ? { xua } : {}),
    inboundLimits,
    ...(consent ? { consent } : {}),
    ...(breakGlass ? { breakGlass } : {}),
    revocation,
    patientIdentity,
  };
}

/** A certificate name may identify one directory entry only (else the caller's mapping is ambiguous). */
function checkIdentityNames(r: Reader, entries: { identity?: PeerIdentity }[], list: string): void {
  const owner = new Map<string, number>();
  entries.forEach((e, i) =>
    e.identity?.names.forEach((n, k) => {
      const first = owner.get(n);
      if (first !== undefined && first !== i)
        r.problem(
          `${list}[${i}].identity.names[${k}]`,
          `"${n}" is already the identity of ${list}[${first}]`,
        );
      else owner.set(n, i);
    }),
  );
}

/** Loads and validates a directory file (YAML or JSON). Throws DirectoryError naming every bad entry. */
export function loadDirectory(file: string): Directory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DirectoryError(file, [`cannot read the file: ${(e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parseDirectoryText(text);
  } catch (e) {
    throw new DirectoryError(file, [`not valid YAML/JSON: ${(e as Error).message.split('\n')[0]}`]);
  }
  return readDirectory(raw, file, dirname(resolve(file)));
}

/**
 * YAML or JSON. A JSON text (JSON is YAML 1.2) is read with JSON.parse: the YAML parser takes
 * hundreds of ms for a national directory of 500 entries, JSON.parse a few. A text that only looks
 * like JSON (a YAML flow mapping) goes to the YAML parser.
 */
function parseDirectoryText(text: string): unknown {
  if (/^\s*\{/.test(text)) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // not strict JSON: YAML decides (and reports)
    }
    if (json !== undefined) {
      // JSON.parse keeps the last of two equal keys; the YAML parser refuses them, and so do we.
      const dup = duplicateJsonKey(text);
      if (dup !== undefined) throw new Error(`map keys must be unique: "${dup}" appears twice`);
      return json;
    }
  }
  return parseYaml(text, { maxAliasCount: 100 });
}

/** The first key repeated within one object of a text that JSON.parse accepted. */
function duplicateJsonKey(text: string): string | undefined {
  const objects: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = objects[objects.length - 1]!;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      objects.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      objects.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = objects[objects.length - 1] != null;
    }
  }
  return undefined;
}
