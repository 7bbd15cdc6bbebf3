/**
 * The directory's patient identity settings (see types.ts, PatientIdentityMode):
 *
 *   patientIdentity:                       # top level: our own ids and the correlation cache
 *     assigningAuthority: 1.2.392.…        # the OID of our patient ids
 *     cacheTtlMs: 3600000                  # discovered correlations (default 1 h)
 *     noMatchTtlMs: 300000                 # "not known there" (default 5 min)
 *     maxCachedCorrelations: 100000        # in-process cache bound (without Redis)
 *   communities:
 *     - patientIdentity: shared            # default: our ids, unchanged
 *     - patientIdentity: { mode: xcpd, assigningAuthority: 1.2.392.… }         # needs endpoints.iti55
 *     - patientIdentity: { mode: static, assigningAuthority: …, correlations: ids-c.yaml }
 *
 * A correlations file maps our patient ids (CX) to the community's: `{ "JP1001^^^&1.2&ISO": "C-7^^^&1.3&ISO" }`.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parsePatientCx } from '../hl7v3/cx';
import type {
  CommunityPatientIdentity,
  Endpoint,
  PatientIdentityMode,
  PatientIdentitySettings,
} from './types';

/** The parts of the directory reader this module uses (load.ts's Reader). */
export interface DirectoryReader {
  problem(path: string, msg: string): void;
  obj(v: unknown, path: string, required?: boolean): Record<string, unknown> | undefined;
  int(v: unknown, path: string, dflt: number, min?: number, max?: number): number;
  oid(v: unknown, path: string): string | undefined;
  file(v: unknown, path: string): string | undefined;
  known(o: Record<string, unknown>, path: string, keys: string[]): void;
}

export const PATIENT_IDENTITY_DEFAULTS: PatientIdentitySettings = {
  cacheTtlMs: 3_600_000,
  noMatchTtlMs: 300_000,
  maxCachedCorrelations: 100_000,
};

const MODES: PatientIdentityMode[] = ['shared', 'xcpd', 'static'];
const MAX_STATIC_CORRELATIONS = 1_000_000;

export function readPatientIdentitySettings(
  r: DirectoryReader,
  v: unknown,
  path: string,
): PatientIdentitySettings {
  const o = r.obj(v, path, false) ?? {};
  r.known(o, path, ['assigningAuthority', 'cacheTtlMs', 'noMatchTtlMs', 'maxCachedCorrelations']);
  const d = PATIENT_IDENTITY_DEFAULTS;
  const out: PatientIdentitySettings = {
    cacheTtlMs: r.int(o.cacheTtlMs, `${path}.cacheTtlMs`, d.cacheTtlMs, 1_000, 30 * 86_400_000),
    noMatchTtlMs: r.int(o.noMatchTtlMs, `${path}.noMatchTtlMs`, d.noMatchTtlMs, 0, 30 * 86_400_000),
    maxCachedCorrelations: r.int(
      o.maxCachedCorrelations,
      `${path}.maxCachedCorrelations`,
      d.maxCachedCorrelations,
      10,
      10_000_000,
    ),
  };
  if (o.assigningAuthority !== undefined)
    out.assigningAuthority = r.oid(o.assigningAuthority, `${path}.assigningAuthority`);
  return out;
}

/** One community's `patientIdentity` (a mode name, or a mapping with `mode`). */
export function readCommunityIdentity(
  r: DirectoryReader,
  v: unknown,
  path: string,
  endpoints: { iti55?: Endpoint },
): CommunityPatientIdentity | undefined {
  if (v === undefined || v === null) return undefined;
  const o: Record<string, unknown> | undefined = typeof v === 'string' ? { mode: v } : r.obj(v, path);
  if (!o) return undefined;
  r.known(o, path, ['mode', 'assigningAuthority', 'correlations']);
  const mode = o.mode;
  if (typeof mode !== 'string' || !MODES.includes(mode as PatientIdentityMode)) {
    r.problem(
      typeof v === 'string' ? path : `${path}.mode`,
      `unknown patient identity mode ${JSON.stringify(mode ?? null)} (shared, xcpd or static)`,
    );
    return undefined;
  }
  const out: CommunityPatientIdentity = { mode: mode as PatientIdentityMode };
  if (mode === 'shared') {
    for (const k of ['assigningAuthority', 'correlations'])
      if (o[k] !== undefined) r.problem(`${path}.${k}`, 'is only used in the xcpd and static modes');
    return out;
  }
  if (o.assigningAuthority === undefined)
    r.problem(
      `${path}.assigningAuthority`,
      `is required in the ${mode} mode (the OID of the community's patient ids)`,
    );
  else out.assigningAuthority = r.oid(o.assigningAuthority, `${path}.assigningAuthority`);
  if (mode === 'xcpd') {
    if (!endpoints.iti55)
      r.problem(`${path}`, 'the xcpd mode needs endpoints.iti55 (Cross Gateway Patient Discovery)');
    if (o.correlations !== undefined) r.problem(`${path}.correlations`, 'is only used in the static mode');
    return out;
  }
  const file = r.file(o.correlations, `${path}.correlations`);
  if (file) out.correlations = readCorrelationFile(r, file, `${path}.correlations`, out.assigningAuthority);
  return out;
}

function readCorrelationFile(
  r: DirectoryReader,
  file: string,
  path: string,
  authority: string | undefined,
): Map<string, string> {
  const out = new Map<string, string>();
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'), { maxAliasCount: 100 });
  } catch (e) {
    r.problem(path, `cannot read ${file}: ${(e as Error).message.split('\n')[0]}`);
    return out;
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    r.problem(path, `${file} must map our patient ids (CX) to the community's`);
    return out;
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > MAX_STATIC_CORRELATIONS) {
    r.problem(path, `${file} has more than ${MAX_STATIC_CORRELATIONS} entries`);
    return out;
  }
  let bad = 0;
  entries.forEach(([local, remote], i) => {
    const l = parsePatientCx(local);
    const rem = typeof remote === 'string' ? parsePatientCx(remote) : undefined;
    if (!l || !rem || (authority && rem.assigningAuthority !== authority)) {
      // Patient ids are PHI: the problem names the line, never the id.
      if (bad++ < 5)
        r.problem(
          path,
          `${file}, entry ${i + 1}: ${!l || !rem ? 'not a pair of CX patient ids (ID^^^&OID&ISO)' : `the community's id is not of assigning authority ${authority}`}`,
        );
      return;
    }
    out.set(local.trim(), (remote as string).trim());
  });
  return out;
}
