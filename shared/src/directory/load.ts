import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseReplyToPattern } from '../async/reply-to';
import type {
  Directory,
  Endpoint,
  LocalConsumer,
  LocalEndpoint,
  PeerIdentity,
  RemoteCommunity,
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

const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;

export function isOid(v: string): boolean {
  return v.length <= 64 && OID.test(v);
}

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

const ENDPOINT_DEFAULTS = {
  timeoutMs: 10_000,
  maxConcurrent: 16,
  queryMaxResponseBytes: 16 * 1024 ** 2,
  retrieveMaxResponseBytes: 4 * 1024 ** 3,
};

type Obj = Record<string, unknown>;

class Reader {
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
      if (!['iti38', 'iti39', 'rad75'].includes(k))
        r.problem(`${path}.endpoints.${k}`, 'unknown endpoint (iti38, iti39, rad75)');
    }
    const xua = o.xua ?? 'optional';
    if (xua !== 'required' && xua !== 'optional')
      r.problem(`${path}.xua`, 'must be "required" or "optional"');
    communities.push({
      homeCommunityId: home ?? '',
      name: r.str(o.name, `${path}.name`, false) ?? home ?? `community ${i}`,
      endpoints: {
        iti38: r.endpoint(eps.iti38, `${path}.endpoints.iti38`, ENDPOINT_DEFAULTS.queryMaxResponseBytes),
        iti39: r.endpoint(eps.iti39, `${path}.endpoints.iti39`, ENDPOINT_DEFAULTS.retrieveMaxResponseBytes),
        rad75: r.endpoint(eps.rad75, `${path}.endpoints.rad75`, ENDPOINT_DEFAULTS.retrieveMaxResponseBytes),
      },
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
      xua: xua === 'required' ? 'required' : 'optional',
    });
  });

  const consumers: LocalConsumer[] = r.arr(root.consumers, 'consumers').flatMap((c, i) => {
    const path = `consumers[${i}]`;
    const o = r.obj(c, path);
    if (!o) return [];
    return [
      {
        name: r.str(o.name, `${path}.name`) ?? `consumer ${i}`,
        identity: r.identity(o.identity, `${path}.identity`),
        replyTo: r.replyTo(o.replyTo, `${path}.replyTo`),
      },
    ];
  });

  const policy = r.obj(root.policy, 'policy', false) ?? {};
  const unknownPatient = policy.unknownPatient ?? 'empty-success';
  if (unknownPatient !== 'empty-success' && unknownPatient !== 'XDSUnknownPatientId') {
    r.problem('policy.unknownPatient', 'must be "empty-success" or "XDSUnknownPatientId"');
  }
  const known = ['homeCommunityId', 'name', 'deadlineMs', 'local', 'communities', 'consumers', 'policy'];
  for (const k of Object.keys(root)) if (!known.includes(k)) r.problem(k, 'unknown setting');

  const name = r.str(root.name, 'name', false) ?? homeCommunityId ?? '';
  const deadlineMs = r.int(root.deadlineMs, 'deadlineMs', 30_000, 100, 3_600_000);
  if (r.problems.length) throw new DirectoryError(file, r.problems);
  return {
    homeCommunityId: homeCommunityId ?? '',
    name,
    deadlineMs,
    local: { registry, repositories, imagingDocumentSources },
    communities,
    consumers,
    policy: {
      unknownPatient: unknownPatient === 'XDSUnknownPatientId' ? 'XDSUnknownPatientId' : 'empty-success',
    },
  };
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
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new DirectoryError(file, [`not valid YAML/JSON: ${(e as Error).message.split('\n')[0]}`]);
  }
  return readDirectory(raw, file, dirname(resolve(file)));
}
