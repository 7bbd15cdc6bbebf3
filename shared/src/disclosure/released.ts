/**
 * Which studies this gateway has disclosed to which community, and through which KOS manifest.
 *
 * A RAD-75 request names studies, series and SOP instances, but no patient and no document the
 * registry knows: the only registry objects that stand for a study are the KOS DocumentEntries
 * whose referenceIdList names it (XDS-I.b), and the stored queries that find them need the
 * patient. So the Responding Gateway remembers, for each KOS entry it released to a community
 * (ITI-38 answers, ITI-39 lookups), its studies; a RAD-75 from that community is then checked
 * against the registry's current entry of that KOS (patient, consent, document class). A study
 * never released to the community is answered as unknown (XDSDocumentUniqueIdError).
 *
 * Redis (shared by replicas) or memory; entries live `ttlMs` (default 24 h, as the initiating
 * side's integrity store). Keys are hashed; values are KOS document uniqueIds — no patient data.
 */
import { createHash } from 'node:crypto';
import type { Redis } from '../redis/client';
import { hashTag } from '../redis/keys';
import { LookupFailed } from './registry';

export interface ReleasedStudy {
  studyUid: string;
  /** uniqueId of the KOS DocumentEntry that names the study. */
  documentUniqueId: string;
}

export interface ReleasedStudies {
  note(community: string, studies: ReleasedStudy[]): Promise<void>;
  /** For each study released to the community: the KOS uniqueIds it was released through. */
  lookup(community: string, studyUids: string[]): Promise<Map<string, string[]>>;
}

export const RELEASED_TTL_MS = 24 * 3600_000;
/** KOS manifests remembered per study (replaced manifests add up). */
const PER_STUDY = 16;

// One community's studies share a hash tag: a pipeline over several of them stays in one Cluster slot.
const key = (community: string, study: string) =>
  `released:${hashTag(community)}:${createHash('sha256').update(`${community}|${study}`).digest('base64url')}`;

export class MemoryReleasedStudies implements ReleasedStudies {
  private readonly map = new Map<string, { ids: string[]; expires: number }>();

  constructor(
    private readonly ttlMs = RELEASED_TTL_MS,
    private readonly maxEntries = 100_000,
  ) {}

  async note(community: string, studies: ReleasedStudy[]): Promise<void> {
    const expires = Date.now() + this.ttlMs;
    for (const s of studies) {
      const k = key(community, s.studyUid);
      const ids = (this.map.get(k)?.ids ?? []).filter((id) => id !== s.documentUniqueId);
      this.map.delete(k);
      this.map.set(k, { ids: [s.documentUniqueId, ...ids].slice(0, PER_STUDY), expires });
    }
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }

  async lookup(community: string, studyUids: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const now = Date.now();
    for (const s of studyUids) {
      const hit = this.map.get(key(community, s));
      if (hit && hit.expires > now) out.set(s, hit.ids);
    }
    return out;
  }
}

export class RedisReleasedStudies implements ReleasedStudies {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs = RELEASED_TTL_MS,
  ) {}

  async note(community: string, studies: ReleasedStudy[]): Promise<void> {
    if (studies.length === 0) return;
    const p = this.redis.pipeline();
    for (const s of studies) {
      const k = key(community, s.studyUid);
      p.lrem(k, 0, s.documentUniqueId);
      p.lpush(k, s.documentUniqueId);
      p.ltrim(k, 0, PER_STUDY - 1);
      p.pexpire(k, this.ttlMs);
    }
    const results = await p.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0] as Error;
  }

  async lookup(community: string, studyUids: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (studyUids.length === 0) return out;
    const p = this.redis.pipeline();
    for (const s of studyUids) p.lrange(key(community, s), 0, PER_STUDY - 1);
    let results: [Error | null, unknown][] | null;
    try {
      results = await p.exec();
    } catch (e) {
      throw new LookupFailed(`released studies unavailable: ${(e as Error).message}`);
    }
    studyUids.forEach((s, i) => {
      const [err, ids] = results?.[i] ?? [new Error('no answer'), undefined];
      if (err) throw new LookupFailed(`released studies unavailable: ${err.message}`);
      if (Array.isArray(ids) && ids.length > 0) out.set(s, ids as string[]);
    });
    return out;
  }
}
