/**
 * Makes the archive's studies findable: polls QIDO-RS for studies, and for each study that is new
 * or whose instance count changed since the watermark, reads its WADO-RS metadata, builds its KOS
 * manifest and submits it with RAD-68. The watermark (a JSON file, written atomically) holds, per
 * published study, the manifest registered for it; a study that gained instances gets a new
 * manifest replacing the old one (RPLC, as XDS-I.b expects).
 *
 * Idempotent: a study whose contents did not change is not submitted again, and the manifest UIDs
 * are derived from the study's contents, so even a lost watermark cannot register a manifest twice
 * (the registry refuses the same uniqueId: XDSDuplicateUniqueIdInRegistry, taken as "published").
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ErrorCode, type Gateway, type Logger, type PublishSettings } from '@xcai/shared';
import { str, uidSegment, type ArchiveClient } from '../archive/client';
import { buildManifest } from './kos';
import { manifestSubmission, sendRad68, type PublishedEntry } from './rad68';

interface StudyMark extends PublishedEntry {
  instances: number;
}

interface Watermark {
  version: 1;
  studies: Record<string, StudyMark>;
}

export interface PublishRun {
  published: number;
  replaced: number;
  unchanged: number;
  failed: { study: string; reason: string }[];
}

const PAGE = 100;

export class Publisher {
  private timer?: NodeJS.Timeout;
  private running?: Promise<PublishRun>;
  private readonly stop = new AbortController();
  lastRun?: { at: Date; result: PublishRun };

  constructor(
    private readonly archive: ArchiveClient,
    private readonly p: PublishSettings,
    private readonly gateway: Gateway,
    private readonly log: Logger,
  ) {}

  /** Polls every `intervalMs` (a first run at once); 0: only `trigger()`. */
  start(): void {
    if (this.p.intervalMs <= 0) return;
    const tick = () => {
      void this.trigger()
        .catch((e: Error) => this.log.warn('publishing run failed', { reason: e.message }))
        .finally(() => {
          if (!this.stop.signal.aborted) this.timer = setTimeout(tick, this.p.intervalMs).unref();
        });
    };
    tick();
  }

  /** One run now (or the one under way). */
  trigger(): Promise<PublishRun> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  async close(): Promise<void> {
    this.stop.abort(new Error('stopping'));
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private load(): Watermark {
    try {
      const w = JSON.parse(readFileSync(this.p.stateFile, 'utf8')) as Watermark;
      if (w.version === 1 && w.studies) return w;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`cannot read the watermark ${this.p.stateFile}: ${(e as Error).message}`, {
          cause: e,
        });
    }
    return { version: 1, studies: {} };
  }

  private save(w: Watermark): void {
    mkdirSync(dirname(this.p.stateFile), { recursive: true });
    const tmp = `${this.p.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(w));
    renameSync(tmp, this.p.stateFile);
  }

  private async run(): Promise<PublishRun> {
    const w = this.load();
    const out: PublishRun = { published: 0, replaced: 0, unchanged: 0, failed: [] };
    const signal = this.stop.signal;
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.archive.json(
        `/studies?includefield=00201208&limit=${PAGE}&offset=${offset}`,
        signal,
      );
      for (const s of page ?? []) {
        const uid = str(s, '0020000D');
        if (!uid) continue;
        const count = Number(str(s, '00201208') ?? NaN);
        const mark = w.studies[uid];
        if (mark && mark.instances === count) {
          out.unchanged++;
          continue;
        }
        try {
          const r = await this.publishStudy(uid, mark, signal);
          if (r === 'unchanged') out.unchanged++;
          else {
            w.studies[uid] = r.mark;
            this.save(w);
            if (mark) out.replaced++;
            else out.published++;
          }
        } catch (e) {
          out.failed.push({ study: uid, reason: (e as Error).message });
          this.log.warn('study not published', { study: uid, reason: (e as Error).message });
        }
      }
      if (!page || page.length < PAGE) break;
    }
    this.lastRun = { at: new Date(), result: out };
    return out;
  }

  private async publishStudy(
    uid: string,
    prev: StudyMark | undefined,
    signal: AbortSignal,
  ): Promise<{ mark: StudyMark } | 'unchanged'> {
    const instances = (await this.archive.json(`/studies/${uidSegment(uid)}/metadata`, signal)) ?? [];
    const m = buildManifest({ studyInstanceUid: uid, instances }, this.archive.settings.repositoryUniqueId);
    if (prev?.uniqueId === m.sopInstanceUid) return { mark: { ...prev, instances: m.instanceCount } };
    const sub = manifestSubmission(m, instances[0], this.p, prev);
    const answer = await sendRad68(this.gateway, this.p, sub, m.bytes, signal);
    const mark = {
      entryUUID: sub.documents[0].entryUUID,
      uniqueId: m.sopInstanceUid,
      instances: m.instanceCount,
    };
    if (answer.status === 'Success') return { mark };
    if (
      answer.errors.some(
        (e) => e.errorCode === ErrorCode.DuplicateUniqueIdInRegistry && e.location === m.sopInstanceUid,
      )
    )
      return { mark }; // registered by an earlier run whose watermark was lost
    throw new Error(
      `the repository refused the manifest: ${answer.errors.map((e) => `${e.errorCode} ${e.codeContext}`).join('; ') || answer.status}`,
    );
  }
}
