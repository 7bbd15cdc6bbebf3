/**
 * Integrity checks on retrieved documents (IHE XCA-I M2/T2). Bytes are never altered: checks read
 * alongside the data.
 *  - Registered documents (ITI-43/ITI-39): SHA-1 and size against the registry's hash/size.
 *  - DICOM instances (RAD-69/RAD-75): mimeType application/dicom, a Part 10 preamble and meta
 *    header, the requested SOP Instance UID, and one of the requested transfer syntaxes.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { checkDicomHead, DicomHeadError, parseDicomHead, readDicomHead } from '../dicom/part10-head';

export type Verification =
  | { kind: 'hash'; sha1?: string; size?: number }
  | { kind: 'dicom'; sopInstanceUid: string; transferSyntaxUids: string[] };

export class IntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IntegrityError';
  }
}

export const DICOM_MIME = 'application/dicom';

/** Checks that need only the DocumentResponse metadata. */
export function checkMimeType(v: Verification | undefined, mimeType: string): string | null {
  if (v?.kind === 'dicom' && mimeType.split(';')[0].trim().toLowerCase() !== DICOM_MIME) {
    return `mimeType is ${mimeType}, expected ${DICOM_MIME}`;
  }
  return null;
}

/** Verifies a document held in memory; returns a violation message or null. */
export async function verifyBuffered(v: Verification | undefined, chunks: Buffer[]): Promise<string | null> {
  if (!v) return null;
  if (v.kind === 'hash') {
    const h = v.sha1 === undefined ? null : createHash('sha1');
    let size = 0;
    for (const c of chunks) {
      h?.update(c);
      size += c.length;
    }
    return hashViolation(v, h?.digest('hex'), size);
  }
  try {
    return checkDicomHead(parseDicomHead(chunks), v);
  } catch (e) {
    return dicomViolation(e);
  }
}

/**
 * The body with its check attached: for DICOM the head is read and checked before anything is
 * returned (so a bad instance is refused before one byte of it is sent); for hashes the stream
 * errors at its end on a mismatch, or as soon as it is longer than announced.
 */
export async function verifiedStream(v: Verification | undefined, body: Readable): Promise<Readable> {
  if (!v) return body;
  if (v.kind === 'dicom') {
    let r: Awaited<ReturnType<typeof readDicomHead>>;
    try {
      r = await readDicomHead(body);
    } catch (e) {
      throw new IntegrityError(dicomViolation(e));
    }
    const bad = checkDicomHead(r.head, v);
    if (bad) {
      r.stream.destroy();
      throw new IntegrityError(bad);
    }
    return r.stream;
  }
  const check = new HashCheck(v);
  body.on('error', (e) => check.destroy(e));
  return body.pipe(check);
}

class HashCheck extends Transform {
  /** Only when there is a registered hash to compare with: the size alone needs no digest. */
  private readonly h: Hash | null;
  private size = 0;
  constructor(private readonly v: { sha1?: string; size?: number }) {
    super();
    this.h = v.sha1 === undefined ? null : createHash('sha1');
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.v.size !== undefined && this.size > this.v.size) {
      cb(new IntegrityError(`document is longer than its registered size ${this.v.size}`));
      return;
    }
    this.h?.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const bad = hashViolation(this.v, this.h?.digest('hex'), this.size);
    cb(bad ? new IntegrityError(bad) : null);
  }
}

function hashViolation(
  v: { sha1?: string; size?: number },
  sha1: string | undefined,
  size: number,
): string | null {
  if (v.size !== undefined && size !== v.size)
    return `document size ${size} differs from the registered size ${v.size}`;
  if (v.sha1 !== undefined && sha1 !== v.sha1)
    return `document SHA-1 ${sha1} differs from the registered hash ${v.sha1}`;
  return null;
}

function dicomViolation(e: unknown): string {
  if (e instanceof DicomHeadError) return `not a valid DICOM Part 10 object (${e.code}): ${e.message}`;
  throw e;
}
