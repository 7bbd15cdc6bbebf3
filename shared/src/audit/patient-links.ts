/**
 * Names the patient in retrieve records (IHE audit tables: "Patient (if known)").
 *
 * ITI-43/39 and RAD-69/75 requests carry no patient id, so a retrieve record alone cannot tell
 * whose documents or images were accessed — and the per-patient access report (R16) would miss
 * them. Consumers find document and study ids with a query first, and the query answer passes
 * through the same gateway: its DocumentEntries carry the patient id, the document uniqueId and
 * (XDS-I.b) the Study Instance UIDs in referenceIdList. The sink's writer remembers these links
 * (bounded, in memory, oldest forgotten first) and fills in the patient of a later retrieve record
 * of the same documents or studies. Off the request path: it runs in the audit writer.
 *
 * Limits: links live in the process that saw the query (a retrieve on another replica, or after a
 * restart, is recorded without a patient, as before); only ids seen in query answers link.
 */
import type { TransactionAuditEvent } from './event';

const UNIQUE_ID_SCHEME = 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab';
const PATIENT_ID_SCHEME = 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427';
const REFERENCE_ID_LIST = 'urn:ihe:iti:xds:2013:referenceIdList';
const STUDY_UID_TYPE = 'urn:ihe:iti:xds:2016:studyInstanceUID';

const EXTRINSIC_RE = /^\s*<(?:[\w.-]+:)?ExtrinsicObject\b/;
const EXTERNAL_ID_RE = /<(?:[\w.-]+:)?ExternalIdentifier\b([^>]*)>/g;
const ATTR_RE = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
const SLOT_RE = /<(?:[\w.-]+:)?Slot\b([^>]*)>([\s\S]*?)<\/(?:[\w.-]+:)?Slot>/g;
const VALUE_RE = /<(?:[\w.-]+:)?Value>([^<]*)<\/(?:[\w.-]+:)?Value>/g;

function unescapeXml(v: string): string {
  if (!v.includes('&')) return v;
  return v.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    switch (e) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

function attrs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(ATTR_RE)) out[m[1] as string] = unescapeXml(m[2] ?? m[3] ?? '');
  return out;
}

/** Patient id, document uniqueId and study UIDs of one serialised DocumentEntry (undefined if none). */
export function documentEntryLinks(
  xml: string,
): { patientId: string; uniqueId?: string; studyUids: string[] } | undefined {
  if (!EXTRINSIC_RE.test(xml)) return undefined;
  let patientId: string | undefined;
  let uniqueId: string | undefined;
  for (const m of xml.matchAll(EXTERNAL_ID_RE)) {
    const a = attrs(m[1] as string);
    if (a.identificationScheme === PATIENT_ID_SCHEME) patientId = a.value;
    else if (a.identificationScheme === UNIQUE_ID_SCHEME) uniqueId = a.value;
  }
  if (!patientId) return undefined;
  const studyUids: string[] = [];
  for (const m of xml.matchAll(SLOT_RE)) {
    if (attrs(m[1] as string).name !== REFERENCE_ID_LIST) continue;
    for (const v of (m[2] as string).matchAll(VALUE_RE)) {
      const cxi = unescapeXml(v[1] as string).trim();
      const comps = cxi.split('^');
      if (comps[4] === STUDY_UID_TYPE && comps[0]) studyUids.push(comps[0]);
    }
  }
  return { patientId, uniqueId, studyUids };
}

export class PatientLinks {
  private readonly byId = new Map<string, string>();

  constructor(private readonly maxEntries = 50_000) {}

  get size(): number {
    return this.byId.size;
  }

  private set(id: string, patient: string): void {
    this.byId.delete(id);
    this.byId.set(id, patient);
    while (this.byId.size > this.maxEntries) {
      const oldest = this.byId.keys().next().value;
      if (oldest === undefined) break;
      this.byId.delete(oldest);
    }
  }

  /** Remembers the links of a query answer's registry objects. */
  note(objects: readonly string[]): void {
    for (const o of objects) {
      const l = documentEntryLinks(o);
      if (!l) continue;
      if (l.uniqueId) this.set(`d|${l.uniqueId}`, l.patientId);
      for (const s of l.studyUids) this.set(`s|${s}`, l.patientId);
    }
  }

  /** Patient ids of the documents / studies of a retrieve event (empty when none is known). */
  patientsOf(e: TransactionAuditEvent): string[] {
    const out = new Set<string>();
    for (const g of e.groups) {
      for (const d of g.documents ?? []) {
        const p = this.byId.get(`d|${d.documentUniqueId}`);
        if (p) out.add(p);
      }
      for (const s of g.studies ?? []) {
        const p = this.byId.get(`s|${s.studyInstanceUid}`);
        if (p) out.add(p);
      }
    }
    return [...out];
  }

  /**
   * The writer's step for one event: a query answer teaches links (and is then dropped from the
   * event), a retrieve event without a patient gets the linked one(s).
   */
  apply(e: TransactionAuditEvent): void {
    if (e.resultObjects) {
      try {
        this.note(e.resultObjects);
      } finally {
        e.resultObjects = undefined;
      }
    }
    if (e.patientIds.length === 0 && e.groups.length > 0) {
      const found = this.patientsOf(e);
      if (found.length > 0) e.patientIds = found;
    }
  }
}
