/**
 * Review reports over the local audit trail (R16): the per-patient access history and a
 * time-ordered view of security / application events. Reads spool directories (seg-*.jsonl) and
 * ARR directories (audit-*.jsonl) and de-duplicates records by id.
 */
import { DOMParser, type Element } from '@xmldom/xmldom';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { USER_UNKNOWN } from './messages';
import { listRepositoryFiles } from './repository';
import { forEachLineSync, listSegments, segmentName } from './spool';

export interface LoadedAuditRecord {
  id: string;
  xml: string;
  /** Where it was read from. */
  origin: string;
}

/** Reads every record of the given spool and/or ARR directories (de-duplicated by id). */
export function loadAuditRecords(dirs: string[]): LoadedAuditRecord[] {
  const out = new Map<string, LoadedAuditRecord>();
  const add = (file: string): void => {
    forEachLineSync(file, (line) => {
      try {
        const r = JSON.parse(line) as { id?: string; xml?: string };
        if (typeof r.id === 'string' && typeof r.xml === 'string' && !out.has(r.id)) {
          out.set(r.id, { id: r.id, xml: r.xml, origin: file });
        }
      } catch {
        // torn line
      }
    });
  };
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) throw new Error(`no such directory: ${dir}`);
    for (const s of listSegments(dir)) add(path.join(dir, segmentName(s)));
    for (const f of listRepositoryFiles(dir)) add(f);
  }
  return [...out.values()];
}

export interface AuditParticipantView {
  userId: string;
  userName?: string;
  alternativeUserId?: string;
  networkAccessPoint?: string;
  roles: string[];
  requestor: boolean;
}

export interface AuditRecordView {
  id: string;
  time: string;
  eventId: string;
  eventName: string;
  action?: string;
  eventTypes: string[];
  transaction?: string;
  outcome: number;
  outcomeDescription?: string;
  auditSource: string;
  /** Human requestors (participants without a DICOM system role that are requestors). */
  users: AuditParticipantView[];
  /** The record says that no person was known (the explicit "user unknown" participant, R6). */
  userUnknown: boolean;
  /** EventIdentification/PurposeOfUse codes. */
  purposesOfUse: string[];
  /** A break-glass access (R11): tagged in the transaction record, or an Emergency Override alert. */
  breakGlass: boolean;
  /** The requesting system (110153 Source for queries, 110152 Destination for retrieves). */
  requestingSystem?: AuditParticipantView;
  respondingSystem?: AuditParticipantView;
  patients: string[];
  communities: string[];
  documents: string[];
  studies: string[];
  queries: string[];
  others: string[];
}

const SYSTEM_ROLES = new Set(['110152', '110153', '110150', '110151']);

function children(el: Element, name: string): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).localName === name) out.push(n as Element);
  }
  return out;
}

function attr(el: Element | undefined, name: string): string | undefined {
  const v = el?.getAttribute(name);
  return v === null || v === undefined || v === '' ? undefined : v;
}

const decode64 = (v: string): string => Buffer.from(v, 'base64').toString('utf8');

/** Parses one AuditMessage into a flat view; undefined when it is not an AuditMessage. */
export function parseAuditRecord(id: string, xml: string): AuditRecordView | undefined {
  let doc;
  try {
    doc = new DOMParser({ onError: () => undefined }).parseFromString(xml, 'text/xml');
  } catch {
    return undefined;
  }
  const root = doc.documentElement;
  if (!root || root.localName !== 'AuditMessage') return undefined;
  const ei = children(root, 'EventIdentification')[0];
  const eid = ei ? children(ei, 'EventID')[0] : undefined;
  const types = ei ? children(ei, 'EventTypeCode') : [];
  const desc = ei ? children(ei, 'EventOutcomeDescription')[0] : undefined;
  const typeCodes = types.map((t) => attr(t, 'csd-code') ?? '');
  const transaction = typeCodes.find((c) => /^(ITI|RAD)-\d+$/.test(c));
  const eventCode = attr(eid, 'csd-code') ?? '';
  const view: AuditRecordView = {
    id,
    time: attr(ei, 'EventDateTime') ?? '',
    eventId: eventCode,
    eventName: attr(eid, 'originalText') ?? attr(eid, 'displayName') ?? '',
    action: attr(ei, 'EventActionCode'),
    eventTypes: types.map((t) => attr(t, 'originalText') ?? attr(t, 'csd-code') ?? ''),
    transaction,
    outcome: Number(attr(ei, 'EventOutcomeIndicator') ?? '0'),
    outcomeDescription: desc?.textContent ?? undefined,
    auditSource: attr(children(root, 'AuditSourceIdentification')[0], 'AuditSourceID') ?? '',
    users: [],
    userUnknown: false,
    purposesOfUse: ei ? children(ei, 'PurposeOfUse').map((p) => attr(p, 'csd-code') ?? '') : [],
    breakGlass: typeCodes.includes('110127') || /(^|; )break-glass: /.test(desc?.textContent ?? ''),
    patients: [],
    communities: [],
    documents: [],
    studies: [],
    queries: [],
    others: [],
  };
  const isQuery = eventCode === '110112';
  for (const ap of children(root, 'ActiveParticipant')) {
    const roles = children(ap, 'RoleIDCode');
    const p: AuditParticipantView = {
      userId: attr(ap, 'UserID') ?? '',
      userName: attr(ap, 'UserName'),
      alternativeUserId: attr(ap, 'AlternativeUserID'),
      networkAccessPoint: attr(ap, 'NetworkAccessPointID'),
      roles: roles.map((r) => attr(r, 'originalText') ?? attr(r, 'csd-code') ?? ''),
      requestor: attr(ap, 'UserIsRequestor') === 'true',
    };
    const codes = roles.map((r) => attr(r, 'csd-code') ?? '');
    const requesterRole = isQuery ? '110153' : '110152';
    const responderRole = isQuery ? '110152' : '110153';
    if (codes.includes(requesterRole)) view.requestingSystem = p;
    else if (codes.includes(responderRole)) view.respondingSystem = p;
    else if (p.requestor && !codes.some((c) => SYSTEM_ROLES.has(c))) {
      if (p.userId === USER_UNKNOWN.userId) view.userUnknown = true;
      else view.users.push(p);
    }
  }
  const communities = new Set<string>();
  for (const po of children(root, 'ParticipantObjectIdentification')) {
    const objId = attr(po, 'ParticipantObjectID') ?? '';
    const typeCode = attr(po, 'ParticipantObjectTypeCode');
    const role = attr(po, 'ParticipantObjectTypeCodeRole');
    const idType = attr(children(po, 'ParticipantObjectIDTypeCode')[0], 'csd-code');
    for (const d of children(po, 'ParticipantObjectDetail')) {
      const type = attr(d, 'type') ?? '';
      if (/homeCommunityId$/i.test(type)) communities.add(decode64(attr(d, 'value') ?? ''));
    }
    if (typeCode === '1' && role === '1') view.patients.push(objId);
    else if (idType === '110180') view.studies.push(objId);
    else if (role === '24') view.queries.push(objId);
    else if (idType === '9') view.documents.push(objId);
    else view.others.push(objId);
  }
  view.communities = [...communities];
  return view;
}

/** Patient id match on CX id + assigning authority universal id (authority optional in the query). */
export function patientMatches(query: string, recorded: string): boolean {
  const parse = (cx: string): { id: string; oid?: string } => {
    const comps = cx.split('^');
    const aa = (comps[3] ?? '').split('&');
    return { id: (comps[0] ?? '').trim(), oid: aa[1] ? aa[1].trim() : undefined };
  };
  const q = parse(query);
  const r = parse(recorded);
  return q.id === r.id && (q.oid === undefined || q.oid === r.oid);
}

export interface ReportOptions {
  patient?: string;
  security?: boolean;
  from?: Date;
  to?: Date;
}

/**
 * The patient's ids in other communities, as successful ITI-55 records correlate them (each names
 * the id asked with and the id the other community answered), followed transitively.
 */
export function correlatedPatientIds(views: AuditRecordView[], patient: string): string[] {
  const links = views.filter((v) => v.transaction === 'ITI-55' && v.outcome === 0 && v.patients.length > 1);
  const ids = [patient];
  for (let i = 0; i < ids.length && ids.length < 100; i++) {
    for (const v of links) {
      if (!v.patients.some((p) => patientMatches(ids[i], p))) continue;
      for (const p of v.patients) if (!ids.some((q) => patientMatches(q, p))) ids.push(p);
    }
  }
  return ids;
}

/** Records matching the options, oldest first (for a patient: under any of its correlated ids). */
export function buildAccessReport(dirs: string[], opts: ReportOptions): AuditRecordView[] {
  const rows: AuditRecordView[] = [];
  const views = loadAuditRecords(dirs)
    .map((rec) => parseAuditRecord(rec.id, rec.xml))
    .filter((v): v is AuditRecordView => v !== undefined);
  const patientIds = opts.patient !== undefined ? correlatedPatientIds(views, opts.patient) : [];
  for (const v of views) {
    const t = Date.parse(v.time);
    if (opts.from && !(t >= opts.from.getTime())) continue;
    if (opts.to && !(t <= opts.to.getTime())) continue;
    if (opts.patient !== undefined && !v.patients.some((r) => patientIds.some((p) => patientMatches(p, r))))
      continue;
    // Security view: security and application events; an Emergency Override names a patient but is one.
    if (opts.security && (v.transaction !== undefined || (v.patients.length > 0 && !v.breakGlass))) continue;
    rows.push(v);
  }
  // Stable: records with the same time keep their spool / file order.
  rows.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  return rows;
}

const OUTCOME: Record<number, string> = {
  0: 'success',
  4: 'minor failure',
  8: 'serious failure',
  12: 'major failure',
};

function who(v: AuditRecordView): string {
  const users = v.users.map(
    (u) => `${u.userName ?? u.userId}${u.roles.length ? ` [${u.roles.join(',')}]` : ''}`,
  );
  if (v.userUnknown) users.push(USER_UNKNOWN.userName ?? USER_UNKNOWN.userId);
  const purpose = v.purposesOfUse.length ? ` for ${v.purposesOfUse.join(',')}` : '';
  return users.length ? `${users.join('; ')}${purpose}` : '-';
}

function sys(p: AuditParticipantView | undefined): string {
  if (!p) return '-';
  // UserName of a system participant = the subject of the certificate it authenticated with.
  const uid = p.userId === 'http://www.w3.org/2005/08/addressing/anonymous' ? 'anonymous' : p.userId;
  const id = p.userName ? `${uid} [${p.userName}]` : uid;
  return p.networkAccessPoint ? `${id} (${p.networkAccessPoint})` : id;
}

/** Plain-text table of a report. */
export function formatReportText(rows: AuditRecordView[], title: string): string {
  const header = [
    'time',
    'transaction',
    'event',
    'outcome',
    'user',
    'requesting system',
    'responding system',
    'community',
    'objects',
  ];
  const table = rows.map((v) => [
    v.time,
    `${v.transaction ?? v.eventTypes.join(',') ?? '-'}${v.breakGlass ? ' BREAK-GLASS' : ''}`,
    `${v.eventName}${v.action ? `/${v.action}` : ''}`,
    `${OUTCOME[v.outcome] ?? String(v.outcome)}${v.outcomeDescription ? `: ${v.outcomeDescription}` : ''}`,
    who(v),
    sys(v.requestingSystem),
    sys(v.respondingSystem),
    v.communities.join(',') || '-',
    [
      ...v.documents.map((d) => `doc ${d}`),
      ...v.studies.map((s) => `study ${s}`),
      ...v.queries.map((q) => `query ${q}`),
      ...v.others,
    ].join(', ') || '-',
  ]);
  const widths = header.map((h, i) =>
    Math.min(60, Math.max(h.length, ...table.map((r) => (r[i] ?? '').length))),
  );
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => {
        const w = widths[i] as number;
        const cell = c.length > w ? `${c.slice(0, w - 1)}…` : c;
        return cell.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  const users = new Set(rows.flatMap((v) => v.users.map((u) => u.userId)));
  const lines = [title, fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...table.map(fmt)];
  lines.push(`${rows.length} record(s), ${users.size} distinct user(s)`);
  return `${lines.join('\n')}\n`;
}
