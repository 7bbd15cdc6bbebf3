/** Identifier and time helpers of the seed generator: UIDs, deterministic UUIDs, HL7 CX, DICOM/XDS times. */
import { createHash } from 'node:crypto';

const UID_PATTERN = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;

export function isUid(value: string): boolean {
  return value.length <= 64 && UID_PATTERN.test(value);
}

export function assertUid(value: string, what: string): string {
  if (!isUid(value)) throw new Error(`${what} is not a valid OID/UID of at most 64 characters: ${value}`);
  return value;
}

/** `root.a.b.c` from numeric components, checked to be a UID of ≤ 64 characters. */
export function childUid(root: string, ...components: number[]): string {
  return assertUid([root, ...components].join('.'), 'generated UID');
}

/** A name-based UUID (RFC 4122 version 5 layout over SHA-1) as `urn:uuid:…`: stable across runs. */
export function stableUuid(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('\u0000'), 'utf8').digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex', 0, 16);
  return `urn:uuid:${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export function sha1Hex(...chunks: Buffer[]): string {
  const h = createHash('sha1');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

export interface Cx {
  id: string;
  namespaceId: string;
  universalId: string;
  universalIdType: string;
}

/** Parses an HL7 CX patient id `ID^^^namespace&universalId&ISO` (assigning authority with an OID). */
export function parseCx(cx: string): Cx {
  const m = /^([^^&~\\|]+)\^\^\^([^&^]*)&([0-9.]+)&ISO$/.exec(cx);
  if (!m || !isUid(m[3])) throw new Error(`patient id is not a CX ID^^^&OID&ISO: ${cx}`);
  return { id: m[1], namespaceId: m[2], universalId: m[3], universalIdType: 'ISO' };
}

const DATE = /^(\d{4})(\d{2})(\d{2})$/;
const TIME = /^(\d{2})(\d{2})(\d{2})$/;
const OFFSET = /^([+-])(\d{2})(\d{2})$/;

export function assertDate(value: string, what: string): string {
  const m = DATE.exec(value);
  const d = m && new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  if (!m || !d || d.getUTCDate() !== +m[3] || d.getUTCMonth() !== +m[2] - 1) {
    throw new Error(`${what} is not a date YYYYMMDD: ${value}`);
  }
  return value;
}

export function assertTime(value: string, what: string): string {
  const m = TIME.exec(value);
  if (!m || +m[1] > 23 || +m[2] > 59 || +m[3] > 59) throw new Error(`${what} is not a time hhmmss: ${value}`);
  return value;
}

export function offsetMinutes(offset: string): number {
  const m = OFFSET.exec(offset);
  if (!m || +m[2] > 14 || +m[3] > 59) throw new Error(`utcOffset is not ±hhmm: ${offset}`);
  return (m[1] === '-' ? -1 : 1) * (+m[2] * 60 + +m[3]);
}

/** A point in time derived from a local DICOM date/time, without reading the clock. */
export class Instant {
  private constructor(private readonly ms: number) {}

  /** From local date YYYYMMDD and time hhmmss in a zone ±hhmm. */
  static fromLocal(date: string, time: string, utcOffset: string): Instant {
    const d = DATE.exec(date) as RegExpExecArray;
    const t = TIME.exec(time) as RegExpExecArray;
    const local = Date.UTC(+d[1], +d[2] - 1, +d[3], +t[1], +t[2], +t[3]);
    return new Instant(local - offsetMinutes(utcOffset) * 60_000);
  }

  plusMinutes(minutes: number): Instant {
    return new Instant(this.ms + minutes * 60_000);
  }

  /** XDS DTM in UTC: YYYYMMDDhhmmss */
  utc(): string {
    return stamp(new Date(this.ms));
  }

  /** DICOM DA and TM in the given zone. */
  local(utcOffset: string): { date: string; time: string } {
    const s = stamp(new Date(this.ms + offsetMinutes(utcOffset) * 60_000));
    return { date: s.slice(0, 8), time: s.slice(8) };
  }
}

function stamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    p(d.getUTCFullYear(), 4) +
    p(d.getUTCMonth() + 1) +
    p(d.getUTCDate()) +
    p(d.getUTCHours()) +
    p(d.getUTCMinutes()) +
    p(d.getUTCSeconds())
  );
}
