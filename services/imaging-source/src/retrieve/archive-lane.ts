/**
 * One lane of archive retrievals, read as the attachment stream of one sub-answer of the RAD-69
 * merge (shared/src/transactions/retrieve.ts). A lane works through its units (one instance, or a
 * whole series) one WADO-RS request at a time, and hands on each DICOM part of the archive's
 * multipart/related answer as it streams — nothing is buffered here beyond a part's head. The merge
 * reads several lanes at once, so the archive sees at most one request per lane.
 *
 * What the archive does not deliver is not yielded and is recorded in `failures`; the merge then
 * reports the document (XDSDocumentUniqueIdError for an instance the archive lacks,
 * XDSRepositoryError otherwise).
 */
import { PassThrough, pipeline, type Readable } from 'node:stream';
import {
  MtomError,
  parseMediaType,
  parseMultipart,
  readDicomHead,
  type AttachmentStream,
  type ImagingDocumentRef,
  type MimePart,
  type MultipartReader,
} from '@xcai/shared';
import { ArchiveError, uidSegment, type ArchiveClient } from '../archive/client';

export type Unit =
  | { kind: 'instance'; doc: ImagingDocumentRef; syntax: string }
  | {
      kind: 'series';
      studyInstanceUid: string;
      seriesInstanceUid: string;
      docs: ImagingDocumentRef[];
      syntax: string;
    };

/** Bytes of its current instance a lane reads before the merge asks for them (per lane). */
const LANE_READ_AHEAD_BYTES = 1 << 20;

/** `*`: the archive's choice (its stored syntax); the part's syntax is then checked here. */
export const ANY_SYNTAX = '*';

export interface LaneContext {
  archive: ArchiveClient;
  signal: AbortSignal;
  /** Requested transfer syntaxes, in the requester's order. */
  transferSyntaxUids: string[];
  contentId(doc: ImagingDocumentRef): string;
  /** Instances the archive does not have (404). */
  notFound: Set<string>;
  /** Why other instances were not delivered. */
  failures: Map<string, string>;
  /** Instances delivered in another syntax than stored: SOP → `from → to`. */
  transcoded: Map<string, string>;
  /** Stored transfer syntax by SOP Instance UID, learnt from earlier answers. */
  storedSyntax: Map<string, string>;
  maxPartBytes: number;
}

function accept(syntax: string): string {
  return `multipart/related; type="application/dicom"; transfer-syntax=${syntax}`;
}

export class ArchiveLane implements AttachmentStream {
  /** Each unit is its own archive request: one failing does not break the lane. */
  readonly independentParts = true;
  private reader?: MultipartReader;
  private response?: Readable;
  private unit?: Unit;
  private yielded = new Set<string>();
  private closed = false;

  constructor(
    private readonly units: Unit[],
    private readonly c: LaneContext,
  ) {}

  async next(): Promise<MimePart | null> {
    for (;;) {
      if (this.closed) return null;
      if (this.c.signal.aborted) {
        // The requester went away (or the deadline passed): ask the archive for nothing more.
        const why = `archive requests cancelled: ${String((this.c.signal.reason as Error)?.message ?? this.c.signal.reason)}`;
        this.endUnit(why);
        for (const u of this.units.splice(0)) this.fail(u, why);
        this.closed = true;
        return null;
      }
      if (!this.reader) {
        const unit = this.units.shift();
        if (!unit) return null;
        await this.open(unit);
        continue;
      }
      let part: MimePart | null;
      try {
        const r = await this.reader.next();
        part = r.done ? null : r.value;
      } catch (e) {
        this.endUnit(`the archive's answer is malformed or cut short: ${(e as Error).message}`);
        continue;
      }
      if (!part) {
        this.endUnit('the archive answered without this instance');
        continue;
      }
      const out = await this.accept(part);
      if (out) return out;
    }
  }

  async discard(): Promise<void> {
    this.closed = true;
    this.units.length = 0;
    this.response?.destroy();
    this.reader = undefined;
  }

  private docsOf(u: Unit): ImagingDocumentRef[] {
    return u.kind === 'instance' ? [u.doc] : u.docs;
  }

  private fail(u: Unit, reason: string, notFound = false): void {
    for (const d of this.docsOf(u)) {
      if (this.yielded.has(d.documentUniqueId)) continue;
      if (notFound) this.c.notFound.add(d.documentUniqueId);
      else this.c.failures.set(d.documentUniqueId, reason);
    }
  }

  /** The current unit's answer ended: whatever it did not deliver has failed. */
  private endUnit(reason: string): void {
    const u = this.unit;
    this.response?.destroy();
    this.reader = undefined;
    this.response = undefined;
    this.unit = undefined;
    if (u) this.fail(u, reason);
  }

  private async open(u: Unit): Promise<void> {
    const path =
      u.kind === 'instance'
        ? `/studies/${uidSegment(u.doc.studyInstanceUid)}/series/${uidSegment(u.doc.seriesInstanceUid)}/instances/${uidSegment(u.doc.documentUniqueId)}`
        : `/studies/${uidSegment(u.studyInstanceUid)}/series/${uidSegment(u.seriesInstanceUid)}`;
    let res;
    try {
      res = await this.c.archive.get(path, accept(u.syntax), this.c.signal);
    } catch (e) {
      this.fail(u, (e as Error).message);
      return;
    }
    if (res.status !== 200) {
      res.body.resume();
      if (res.status === 404) this.fail(u, 'not in the archive', true);
      else if (res.status === 406 || res.status === 415)
        this.fail(u, `the archive cannot deliver it as ${u.syntax} (HTTP ${res.status})`);
      else this.fail(u, `the archive answered HTTP ${res.status}`);
      return;
    }
    const mt = parseMediaType(res.contentType);
    if (!mt || mt.type !== 'multipart/related') {
      res.body.destroy();
      this.fail(u, `the archive answered ${res.contentType || 'no Content-Type'}, not multipart/related`);
      return;
    }
    try {
      this.reader = parseMultipart(res.body, res.contentType, {
        maxPartHeaderBytes: 16 * 1024,
        maxParts: u.kind === 'instance' ? 1 : 1_000_000,
        maxRootBytes: this.c.maxPartBytes,
        maxTotalBytes: Number.MAX_SAFE_INTEGER,
        idleTimeoutMs: this.c.archive.settings.timeoutMs,
      });
    } catch (e) {
      res.body.destroy();
      this.fail(u, (e as MtomError).message);
      return;
    }
    this.response = res.body;
    this.unit = u;
  }

  /** A part of the current answer, as the part of the document it is; null if it is skipped. */
  private async accept(part: MimePart): Promise<MimePart | null> {
    const u = this.unit as Unit;
    const type = part.headers.contentType ? parseMediaType(part.headers.contentType)?.type : undefined;
    if (type !== undefined && type !== 'application/dicom') {
      part.body.destroy();
      this.endUnit(`the archive sent a ${type} part, not application/dicom`);
      return null;
    }
    // Which instance this is: the one asked for, or (series) the SOP Instance UID of its head.
    let doc: ImagingDocumentRef | undefined = u.kind === 'instance' ? u.doc : undefined;
    let body: Readable = part.body;
    if (u.kind === 'series' || u.syntax === ANY_SYNTAX) {
      let head;
      try {
        ({ head, stream: body } = await readDicomHead(part.body));
      } catch (e) {
        this.endUnit(`the archive sent a part that is not DICOM Part 10: ${(e as Error).message}`);
        return null;
      }
      if (u.kind === 'series') doc = u.docs.find((d) => d.documentUniqueId === head.sopInstanceUid);
      if (!doc || this.yielded.has(doc.documentUniqueId)) {
        body.destroy(); // an instance of the series nobody asked for
        return null;
      }
      this.c.storedSyntax.set(doc.documentUniqueId, head.transferSyntaxUid);
      if (!this.c.transferSyntaxUids.includes(head.transferSyntaxUid)) {
        // Stored in a syntax the requester did not ask for: ask again for its first choice.
        body.destroy();
        const again: Unit = { kind: 'instance', doc, syntax: this.c.transferSyntaxUids[0] };
        this.c.transcoded.set(doc.documentUniqueId, `${head.transferSyntaxUid} → ${again.syntax}`);
        if (u.kind === 'instance') {
          this.response?.destroy();
          this.reader = undefined;
          this.unit = undefined;
        }
        this.units.unshift(again);
        return null;
      }
    } else {
      const stored = this.c.storedSyntax.get(doc!.documentUniqueId);
      if (stored && stored !== u.syntax)
        this.c.transcoded.set(doc!.documentUniqueId, `${stored} → ${u.syntax}`);
    }
    const d = doc as ImagingDocumentRef;
    this.yielded.add(d.documentUniqueId);
    this.c.failures.delete(d.documentUniqueId);
    // Read ahead, bounded: the merge writes one part at a time, and without this the other lanes'
    // instances would wait in socket buffers; with it they arrive while the current one is written.
    const ahead = new PassThrough({ highWaterMark: LANE_READ_AHEAD_BYTES });
    pipeline(body, ahead, () => undefined);
    return {
      headers: { contentId: this.c.contentId(d), contentType: 'application/dicom', all: {} },
      body: ahead,
    };
  }
}

export { ArchiveError };
