/**
 * Where a patient's consent is read (directory `consent.source`), cached for `consent.cacheMs`:
 *  - bppc: the patient's approved Privacy Policy Acknowledgement documents in our registry
 *    (classCode 57016-8 by default); the policy OIDs of their eventCodeList are what the patient
 *    acknowledged (ITI TF-3 5.1.2.1.1.2), counted while serviceStartTime ≤ now < serviceStopTime;
 *  - service: POST `{"patientId": CX}` (JSON) to the configured URL; the answer is
 *    `{"policies": [OID, …]}`, 404 meaning "nothing on file";
 *  - file: YAML/JSON `patients: {CX: [OID, …]}`, reread when it changes.
 * A source that cannot answer throws LookupFailed: nothing is released on a guess.
 */
import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ConsentSettings, Endpoint } from '../directory/types';
import { isOid } from '../directory/load';
import type { Ctx } from '../pipeline/transaction';
import type { Logger } from '../util/log';
import { documentsOfClass, LookupFailed } from './registry';

export interface ConsentSource {
  /** The privacy policy OIDs the patient acknowledged that are in effect now. */
  acknowledged(patientId: string, ctx: Ctx): Promise<string[]>;
}

/** `20250401093000` (XDS DTM, UTC) of an instant. */
export function dtm(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** serviceStartTime ≤ now < serviceStopTime, each compared at its own precision. */
export function inEffect(now: string, start?: string, stop?: string): boolean {
  if (start && now.slice(0, start.length) < start) return false;
  if (stop && now.slice(0, stop.length) >= stop) return false;
  return true;
}

function bppcSource(s: ConsentSettings, now: () => Date): ConsentSource {
  const classCodes = s.classCodes.map((c) => (c.scheme ? `${c.code}^^${c.scheme}` : c.code));
  return {
    async acknowledged(patientId, ctx) {
      const t = dtm(now());
      const docs = await documentsOfClass(ctx, patientId, classCodes);
      const out = new Set<string>();
      for (const d of docs) {
        if (d.patientId !== patientId || !inEffect(t, d.serviceStartTime, d.serviceStopTime)) continue;
        for (const c of d.eventCodes) out.add(c.code);
      }
      return [...out];
    },
  };
}

function policyList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !isOid(x)))
    throw new LookupFailed(`${what}: policies must be a list of OIDs`);
  return v as string[];
}

function serviceSource(endpoint: Endpoint): ConsentSource {
  return {
    async acknowledged(patientId, ctx) {
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.deadline.cap(endpoint.timeoutMs))]);
      let status: number;
      let text: string;
      try {
        const res = await ctx.gateway.outbound.post({
          endpoint,
          contentType: 'application/json',
          body: JSON.stringify({ patientId }),
          signal,
          headersTimeoutMs: endpoint.timeoutMs,
        });
        status = res.status;
        const chunks: Buffer[] = [];
        for await (const c of res.body) chunks.push(c as Buffer);
        text = Buffer.concat(chunks).toString('utf8');
      } catch (e) {
        throw new LookupFailed(`the consent service did not answer: ${(e as Error).message}`);
      }
      if (status === 404) return [];
      if (status !== 200) throw new LookupFailed(`the consent service answered HTTP ${status}`);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new LookupFailed('the consent service did not answer JSON');
      }
      return policyList((body as { policies?: unknown } | null)?.policies, 'the consent service');
    },
  };
}

/** The file is read at most once a second, and again only when its size or time changed. */
function fileSource(file: string, log: Logger): ConsentSource {
  let table: Map<string, string[]> | undefined;
  let seen = '';
  let checked = 0;
  const load = () => {
    const now = Date.now();
    if (now - checked < 1_000 && table) return;
    checked = now;
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.size}|${st.mtimeMs}`;
    } catch (e) {
      log.error('consent file unreadable', { file, reason: (e as Error).message });
      if (!table) throw new LookupFailed(`the consent file ${file} cannot be read`);
      return;
    }
    if (stamp === seen && table) return;
    try {
      const raw = parseYaml(readFileSync(file, 'utf8'), { maxAliasCount: 100 }) as {
        patients?: unknown;
      } | null;
      const patients = raw?.patients;
      if (!patients || typeof patients !== 'object' || Array.isArray(patients))
        throw new Error('it must hold a "patients" mapping');
      const next = new Map<string, string[]>();
      for (const [id, v] of Object.entries(patients)) next.set(id, policyList(v, `patient ${id}`));
      table = next;
      seen = stamp;
      log.info('consent file loaded', { file, patients: next.size });
    } catch (e) {
      log.error('consent file not usable; the previous content stays in force', {
        file,
        reason: (e as Error).message,
      });
      if (!table) throw new LookupFailed(`the consent file ${file} is not usable`);
    }
  };
  return {
    async acknowledged(patientId) {
      load();
      return table?.get(patientId) ?? [];
    },
  };
}

/** The configured source behind a bounded cache; concurrent lookups of one patient share one answer. */
export class Consent {
  private readonly source: ConsentSource;
  private readonly cache = new Map<string, { value: string[]; expires: number }>();
  private readonly inFlight = new Map<string, Promise<string[]>>();

  constructor(
    private readonly settings: ConsentSettings,
    log: Logger,
    private readonly now: () => Date = () => new Date(),
    private readonly maxEntries = 10_000,
  ) {
    this.source =
      settings.source === 'service' && settings.service
        ? serviceSource(settings.service)
        : settings.source === 'file' && settings.file
          ? fileSource(settings.file, log)
          : bppcSource(settings, now);
  }

  async acknowledged(patientId: string, ctx: Ctx): Promise<string[]> {
    const t = this.now().getTime();
    const hit = this.cache.get(patientId);
    if (hit && hit.expires > t) return hit.value;
    let p = this.inFlight.get(patientId);
    if (!p) {
      p = this.source.acknowledged(patientId, ctx).finally(() => this.inFlight.delete(patientId));
      this.inFlight.set(patientId, p);
    }
    const value = await p;
    if (this.settings.cacheMs > 0) {
      this.cache.delete(patientId);
      this.cache.set(patientId, { value, expires: t + this.settings.cacheMs });
      while (this.cache.size > this.maxEntries) {
        const oldest = this.cache.keys().next().value;
        if (oldest === undefined) break;
        this.cache.delete(oldest);
      }
    }
    return value;
  }
}
