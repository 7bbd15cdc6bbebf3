/**
 * The directory's disclosure and revocation settings (validated here, used by disclosure/ and
 * security/revocation/): `consent` and `communities[].consent` (R10), `breakGlass` (R11),
 * `communities[].documents` (R9), `revocation` (R5). Every bad entry is named, as for the rest of
 * the directory (load.ts).
 */
import type {
  BreakGlassSettings,
  CodeMatch,
  ConsentPolicy,
  ConsentSettings,
  DocumentPolicy,
  RevocationSettings,
} from './types';
import type { Reader } from './load';

type Obj = Record<string, unknown>;

/** LOINC 57016-8 "Privacy Policy Acknowledgement Document" (ITI TF-3 5.1.2.1.1.1). */
export const BPPC_CLASS_CODE: CodeMatch = { code: '57016-8', scheme: '2.16.840.1.113883.6.1' };

/** HL7 v3 ActReason (2.16.840.1.113883.5.8): ETREAT emergency treatment, BTG break the glass. */
export const EMERGENCY_PURPOSES: CodeMatch[] = [
  { code: 'ETREAT', scheme: '2.16.840.1.113883.5.8' },
  { code: 'BTG', scheme: '2.16.840.1.113883.5.8' },
];

export const CONSENT_CACHE_MS = 30_000;

/** `code` or `code^^scheme` → CodeMatch (the stored-query parameter form of a code). */
export function parseCodeMatch(v: string): CodeMatch | undefined {
  const parts = v.split('^');
  const code = parts[0]?.trim();
  if (!code || parts.length === 2 || parts.length > 3 || (parts.length === 3 && parts[1] !== ''))
    return undefined;
  const scheme = parts[2]?.trim();
  return scheme ? { code, scheme } : { code };
}

function codes(r: Reader, v: unknown, path: string): CodeMatch[] {
  return r
    .arr(v, path)
    .map((c, i) => {
      const s = r.str(c, `${path}[${i}]`);
      if (s === undefined) return undefined;
      const m = parseCodeMatch(s);
      if (!m) r.problem(`${path}[${i}]`, `"${s}" is not a code: "code" or "code^^codingScheme"`);
      return m;
    })
    .filter((c): c is CodeMatch => c !== undefined);
}

function oids(r: Reader, v: unknown, path: string): string[] {
  return r
    .arr(v, path)
    .map((c, i) => r.oid(c, `${path}[${i}]`))
    .filter((c): c is string => c !== undefined);
}

/** permit / deny / default / breakGlass; absent keys come from `base`. */
function consentPolicy(r: Reader, o: Obj, path: string, base: ConsentPolicy): ConsentPolicy {
  const dflt = o.default ?? base.default;
  if (dflt !== 'permit' && dflt !== 'deny') r.problem(`${path}.default`, 'must be "permit" or "deny"');
  return {
    permit: o.permit === undefined ? base.permit : oids(r, o.permit, `${path}.permit`),
    deny: o.deny === undefined ? base.deny : oids(r, o.deny, `${path}.deny`),
    default: dflt === 'deny' ? 'deny' : 'permit',
    breakGlass: r.bool(o.breakGlass, `${path}.breakGlass`, base.breakGlass),
  };
}

/**
 * Top-level `consent`: source (bppc | service | file), classCodes (bppc), service (an endpoint),
 * file, cacheMs (0 … 3 600 000, default 30 000), and the default policy: permit, deny (policy
 * OIDs), default (permit | deny, required: the region's rule must be chosen), breakGlass.
 */
export function readConsent(r: Reader, v: unknown, path: string): ConsentSettings | undefined {
  const o = r.obj(v, path, false);
  if (!o) return undefined;
  r.known(o, path, [
    'source',
    'classCodes',
    'service',
    'file',
    'cacheMs',
    'permit',
    'deny',
    'default',
    'breakGlass',
  ]);
  const source = o.source ?? 'bppc';
  if (source !== 'bppc' && source !== 'service' && source !== 'file')
    r.problem(`${path}.source`, 'must be "bppc", "service" or "file"');
  if (o.default === undefined)
    r.problem(`${path}.default`, 'is required: "permit" (opt-out region) or "deny" (opt-in region)');
  const out: ConsentSettings = {
    source: source === 'service' ? 'service' : source === 'file' ? 'file' : 'bppc',
    classCodes: o.classCodes === undefined ? [BPPC_CLASS_CODE] : codes(r, o.classCodes, `${path}.classCodes`),
    cacheMs: r.int(o.cacheMs, `${path}.cacheMs`, CONSENT_CACHE_MS, 0, 3_600_000),
    policy: consentPolicy(r, o, path, { permit: [], deny: [], default: 'deny', breakGlass: false }),
  };
  if (out.source === 'service') {
    out.service = r.endpoint(o.service, `${path}.service`, 64 * 1024);
    if (!out.service) r.problem(`${path}.service`, 'is required with source "service"');
  } else if (o.service !== undefined) r.problem(`${path}.service`, 'is only used with source "service"');
  if (out.source === 'file') {
    out.file = r.file(o.file, `${path}.file`);
  } else if (o.file !== undefined) r.problem(`${path}.file`, 'is only used with source "file"');
  if (out.source === 'bppc' && out.classCodes.length === 0)
    r.problem(`${path}.classCodes`, 'must name at least one class code');
  return out;
}

/** `communities[i].consent`: permit / deny / default / breakGlass over the top-level policy. */
export function readCommunityConsent(
  r: Reader,
  v: unknown,
  path: string,
  consent: ConsentSettings | undefined,
): ConsentPolicy | undefined {
  const o = r.obj(v, path, false);
  if (!consent) {
    if (o) r.problem(path, 'needs a top-level consent (where consent is read)');
    return undefined;
  }
  if (!o) return { ...consent.policy };
  r.known(o, path, ['permit', 'deny', 'default', 'breakGlass']);
  return consentPolicy(r, o, path, consent.policy);
}

/** `communities[i].documents`: classCodes, typeCodes, confidentialityCodes (each `code[^^scheme]`). */
export function readDocumentPolicy(r: Reader, v: unknown, path: string): DocumentPolicy | undefined {
  const o = r.obj(v, path, false);
  if (!o) return undefined;
  r.known(o, path, ['classCodes', 'typeCodes', 'confidentialityCodes']);
  const out: DocumentPolicy = {};
  for (const k of ['classCodes', 'typeCodes', 'confidentialityCodes'] as const) {
    if (o[k] === undefined) continue;
    out[k] = codes(r, o[k], `${path}.${k}`);
    if (out[k].length === 0)
      r.problem(`${path}.${k}`, 'must list at least one code (leave it out to allow all)');
  }
  return out;
}

/** Top-level `breakGlass`: purposesOfUse (codes), until (an ISO 8601 instant), webhook (an endpoint). */
export function readBreakGlass(r: Reader, v: unknown, path: string): BreakGlassSettings {
  const o = r.obj(v, path, false) ?? {};
  r.known(o, path, ['purposesOfUse', 'until', 'webhook']);
  const out: BreakGlassSettings = {
    purposesOfUse:
      o.purposesOfUse === undefined ? EMERGENCY_PURPOSES : codes(r, o.purposesOfUse, `${path}.purposesOfUse`),
  };
  if (o.until !== undefined) {
    const text = o.until instanceof Date ? o.until.toISOString() : r.str(o.until, `${path}.until`);
    const t = text === undefined ? NaN : Date.parse(text);
    if (text !== undefined && (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}T/.test(text)))
      r.problem(
        `${path}.until`,
        `"${text}" is not an ISO 8601 date and time (e.g. 2025-04-01T00:00:00+09:00)`,
      );
    else if (!Number.isNaN(t)) out.until = new Date(t);
  }
  if (o.webhook !== undefined) out.webhook = r.endpoint(o.webhook, `${path}.webhook`, 64 * 1024);
  if (out.purposesOfUse.length === 0) r.problem(`${path}.purposesOfUse`, 'must name at least one code');
  return out;
}

/** Top-level `revocation`: a list of { trustAnchor, crls, allowExpiredCrl, ocsp: {url, timeoutMs, softFail} }. */
export function readRevocation(r: Reader, v: unknown, path: string): RevocationSettings[] {
  const out: RevocationSettings[] = [];
  const anchors = new Set<string>();
  r.arr(v, path).forEach((e, i) => {
    const p = `${path}[${i}]`;
    const o = r.obj(e, p);
    if (!o) return;
    r.known(o, p, ['trustAnchor', 'crls', 'allowExpiredCrl', 'ocsp']);
    const trustAnchor = r.file(o.trustAnchor, `${p}.trustAnchor`);
    if (trustAnchor && anchors.has(trustAnchor))
      r.problem(`${p}.trustAnchor`, `${trustAnchor} is listed twice`);
    if (trustAnchor) anchors.add(trustAnchor);
    const crls = r
      .arr(o.crls, `${p}.crls`)
      .map((f, k) => r.file(f, `${p}.crls[${k}]`))
      .filter((f): f is string => f !== undefined);
    const entry: RevocationSettings = {
      trustAnchor: trustAnchor ?? '',
      crls,
      allowExpiredCrl: r.bool(o.allowExpiredCrl, `${p}.allowExpiredCrl`, false),
    };
    const ocsp = r.obj(o.ocsp, `${p}.ocsp`, false);
    if (ocsp) {
      r.known(ocsp, `${p}.ocsp`, ['url', 'timeoutMs', 'softFail']);
      const url = r.url(ocsp.url, `${p}.ocsp.url`);
      if (url && !url.startsWith('http://'))
        r.problem(`${p}.ocsp.url`, 'must be an http:// URL (OCSP responses are signed; RFC 6960 A.1)');
      entry.ocsp = {
        url: url ?? '',
        timeoutMs: r.int(ocsp.timeoutMs, `${p}.ocsp.timeoutMs`, 5_000, 100, 60_000),
        softFail: r.bool(ocsp.softFail, `${p}.ocsp.softFail`, false),
      };
    }
    if (crls.length === 0 && !entry.ocsp) r.problem(p, 'names neither crls nor ocsp');
    out.push(entry);
  });
  return out;
}
