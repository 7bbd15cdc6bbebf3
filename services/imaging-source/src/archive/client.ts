/**
 * The DICOMweb archive as the bridge sees it (DICOM PS3.18): QIDO-RS searches and WADO-RS
 * metadata as JSON, WADO-RS instances as a streamed multipart/related body. One connection pool,
 * TLS verification always on, credentials read from files at start, and requests only below the
 * configured base URL.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import type { ArchiveSettings } from '@xcai/shared';

export type ArchiveFailureKind =
  'not-found' | 'not-acceptable' | 'status' | 'bad-response' | 'unreachable' | 'timeout' | 'aborted';

export class ArchiveError extends Error {
  constructor(
    readonly kind: ArchiveFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'ArchiveError';
  }
}

export interface ArchiveResponse {
  status: number;
  contentType: string;
  body: Readable;
}

/** A DICOM JSON dataset (PS3.18 F.2): tag → { vr, Value }. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] } | undefined>;

function credentials(s: ArchiveSettings): string | undefined {
  const read = (f: string) => readFileSync(f, 'utf8').trim();
  if (s.auth?.basicFile) return `Basic ${Buffer.from(read(s.auth.basicFile)).toString('base64')}`;
  if (s.auth?.bearerFile) return `Bearer ${read(s.auth.bearerFile)}`;
  return undefined;
}

export class ArchiveClient {
  private readonly agent: Agent;
  private readonly authorization?: string;
  private readonly base: string;

  constructor(readonly settings: ArchiveSettings) {
    this.base = settings.url.replace(/\/+$/, '');
    this.authorization = credentials(settings);
    const ca = settings.ca.map((f) => readFileSync(f));
    this.agent = new Agent({
      connections: settings.maxConcurrent * 2,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      connect: { rejectUnauthorized: true, ...(ca.length ? { ca } : {}) },
    });
  }

  /** A GET below the base URL (`path` starts with `/`; its segments are already escaped). */
  async get(path: string, accept: string, signal?: AbortSignal): Promise<ArchiveResponse> {
    const url = `${this.base}${path}`;
    const headers: Record<string, string> = { accept };
    if (this.authorization) headers.authorization = this.authorization;
    try {
      const res = await request(url, { method: 'GET', headers, signal, dispatcher: this.agent });
      return {
        status: res.statusCode,
        contentType: String(res.headers['content-type'] ?? ''),
        body: res.body as unknown as Readable,
      };
    } catch (e) {
      throw failure(e, signal);
    }
  }

  /** A JSON answer (QIDO-RS, WADO-RS metadata): [] for 204, null for 404. */
  async json(path: string, signal?: AbortSignal): Promise<DicomJson[] | null> {
    const res = await this.get(path, 'application/dicom+json, application/json', signal);
    if (res.status === 404) {
      res.body.resume();
      return null;
    }
    if (res.status === 204) {
      res.body.resume();
      return [];
    }
    if (res.status !== 200) {
      res.body.resume();
      throw new ArchiveError('status', `archive answered HTTP ${res.status} for ${path.split('?')[0]}`);
    }
    let text: string;
    try {
      text = await (res.body as unknown as { text(): Promise<string> }).text();
    } catch (e) {
      throw failure(e, signal);
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (!Array.isArray(v)) throw new Error('not an array');
      return v as DicomJson[];
    } catch (e) {
      throw new ArchiveError(
        'bad-response',
        `archive answered malformed DICOM JSON: ${(e as Error).message}`,
      );
    }
  }

  /** Reachable and answering QIDO-RS (for /readyz). */
  async ping(timeoutMs = 2_000): Promise<void> {
    await this.json('/studies?limit=1', AbortSignal.timeout(timeoutMs));
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function failure(e: unknown, signal?: AbortSignal): ArchiveError {
  if (e instanceof ArchiveError) return e;
  const err = e as Error & { code?: string };
  if (signal?.aborted)
    return new ArchiveError(
      'aborted',
      `archive request cancelled: ${String((signal.reason as Error)?.message ?? signal.reason)}`,
    );
  if (err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT')
    return new ArchiveError('timeout', `archive did not answer in time (${err.code})`);
  return new ArchiveError('unreachable', `archive unreachable: ${err.message}`);
}

/** The first value of a DICOM JSON attribute, as a string. */
export function str(ds: DicomJson, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return undefined;
  return String(v);
}

/** All string values of an attribute. */
export function strs(ds: DicomJson, tag: string): string[] {
  return (ds[tag]?.Value ?? []).filter((v) => typeof v === 'string' || typeof v === 'number').map(String);
}

/** A PN value as `Alphabetic=Ideographic=Phonetic` (DICOM's component-group form). */
export function personName(ds: DicomJson, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0] as
    { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | undefined;
  if (!v || typeof v !== 'object') return undefined;
  const groups = [v.Alphabetic ?? '', v.Ideographic ?? '', v.Phonetic ?? ''];
  while (groups.length > 1 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

/** A UID as a path segment (UIDs are digits and dots; anything else is refused). */
export function uidSegment(uid: string): string {
  if (!/^[0-9.]{1,64}$/.test(uid)) throw new ArchiveError('bad-response', `not a UID: ${uid.slice(0, 80)}`);
  return uid;
}
