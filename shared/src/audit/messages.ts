/**
 * DICOM PS3.15 A.5 AuditMessage builder for the six XCA-I transactions and the gateway's security
 * events, following the IHE audit tables summarised in SPEC-NOTES §11.2 (ITI TF-2 3.18/3.38/3.39/
 * 3.43 and RAD TF-3 4.69/4.75). Output is one single-line XML string per record (no XML
 * declaration; the syslog layer adds the UTF-8 BOM). Valid against dicom2017c.xsd.
 */
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type {
  AuditEvent,
  AuditOutcomeGroup,
  AuditParticipant,
  AuditSourceInfo,
  AuditedDocument,
  AuditedStudy,
  AuditedTransaction,
  EventOutcome,
  HumanRequestor,
  PurposeOfUse,
  SecurityAuditEvent,
  TransactionAuditEvent,
} from './event';
import { element, escapeText } from './xml';

type Attr = [string, string | number | boolean | undefined];

interface Code {
  code: string;
  system: string;
  text: string;
}

const DCM = 'DCM';
const IHE_TX = 'IHE Transactions';
const RFC3881 = 'RFC-3881';

export const EVENT_ID = {
  applicationActivity: { code: '110100', system: DCM, text: 'Application Activity' },
  instancesAccessed: { code: '110103', system: DCM, text: 'DICOM Instances Accessed' },
  instancesTransferred: { code: '110104', system: DCM, text: 'DICOM Instances Transferred' },
  export: { code: '110106', system: DCM, text: 'Export' },
  import: { code: '110107', system: DCM, text: 'Import' },
  query: { code: '110112', system: DCM, text: 'Query' },
  securityAlert: { code: '110113', system: DCM, text: 'Security Alert' },
} as const satisfies Record<string, Code>;

export const EVENT_TYPE = {
  applicationStart: { code: '110120', system: DCM, text: 'Application Start' },
  applicationStop: { code: '110121', system: DCM, text: 'Application Stop' },
  nodeAuthentication: { code: '110126', system: DCM, text: 'Node Authentication' },
  networkConfiguration: { code: '110128', system: DCM, text: 'Network Configuration' },
  securityConfiguration: { code: '110129', system: DCM, text: 'Security Configuration' },
  softwareConfiguration: { code: '110131', system: DCM, text: 'Software Configuration' },
  useOfRestrictedFunction: { code: '110132', system: DCM, text: 'Use of Restricted Function' },
  emergencyOverrideStarted: { code: '110127', system: DCM, text: 'Emergency Override Started' },
} as const satisfies Record<string, Code>;

const ROLE = {
  application: { code: '110150', system: DCM, text: 'Application' },
  applicationLauncher: { code: '110151', system: DCM, text: 'Application Launcher' },
  destination: { code: '110152', system: DCM, text: 'Destination Role ID' },
  source: { code: '110153', system: DCM, text: 'Source Role ID' },
} as const satisfies Record<string, Code>;

const ID_TYPE = {
  patientNumber: { code: '2', system: RFC3881, text: 'Patient Number' },
  reportNumber: { code: '9', system: RFC3881, text: 'Report Number' },
  uri: { code: '12', system: RFC3881, text: 'URI' },
  studyInstanceUid: { code: '110180', system: DCM, text: 'Study Instance UID' },
  nodeId: { code: '110182', system: DCM, text: 'Node ID' },
} as const satisfies Record<string, Code>;

const SOURCE_TYPE_TEXT: Record<string, string> = {
  '1': 'End-user display device, diagnostic device',
  '2': 'Data acquisition device or instrument',
  '3': 'Web Server process or thread',
  '4': 'Application Server process or thread',
  '5': 'Database Server process or thread',
  '6': 'Security server',
  '7': 'ISO level 1-3 network component',
  '8': 'ISO level 4-6 operating software',
  '9': 'Other',
};

type TxKind = 'query' | 'documents' | 'studies' | 'submission';

export const TRANSACTIONS: Record<
  AuditedTransaction,
  { name: string; kind: TxKind; homeDetail: string; hl7v3?: boolean }
> = {
  'ITI-18': {
    name: 'Registry Stored Query',
    kind: 'query',
    homeDetail: 'urn:ihe:iti:xca:2010:homeCommunityId',
  },
  'ITI-38': {
    name: 'Cross Gateway Query',
    kind: 'query',
    homeDetail: 'urn:ihe:iti:xca:2010:homeCommunityId',
  },
  'ITI-43': { name: 'Retrieve Document Set', kind: 'documents', homeDetail: 'ihe:homeCommunityID' },
  'ITI-39': { name: 'Cross Gateway Retrieve', kind: 'documents', homeDetail: 'ihe:homeCommunityID' },
  'RAD-69': { name: 'Retrieve Imaging Document Set', kind: 'studies', homeDetail: 'ihe:homeCommunityID' },
  'RAD-75': {
    name: 'Cross Gateway Retrieve Imaging Document Set',
    kind: 'studies',
    homeDetail: 'urn:ihe:iti:xca:2010:homeCommunityId',
  },
  'ITI-41': {
    name: 'Provide and Register Document Set-b',
    kind: 'submission',
    homeDetail: 'ihe:homeCommunityID',
  },
  'RAD-68': {
    name: 'Provide and Register Imaging Document Set - MTOM/XOP',
    kind: 'submission',
    homeDetail: 'ihe:homeCommunityID',
  },
  'ITI-42': { name: 'Register Document Set-b', kind: 'submission', homeDetail: 'ihe:homeCommunityID' },
  // ITI TF-2 3.55.5.1 and 3.47.5.1: QueryByParameter as ParticipantObjectQuery, no QueryEncoding.
  'ITI-55': {
    name: 'Cross Gateway Patient Discovery',
    kind: 'query',
    homeDetail: 'ihe:homeCommunityID',
    hl7v3: true,
  },
  'ITI-47': {
    name: 'Patient Demographics Query',
    kind: 'query',
    homeDetail: 'ihe:homeCommunityID',
    hl7v3: true,
  },
};

const SUBMISSION_SET: Code = {
  code: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
  system: 'IHE XDS Metadata',
  text: 'submission set classificationNode',
};

export interface BuildOptions {
  /**
   * EventID written by the *requester* of RAD-69/RAD-75. Default '110103' (DICOM Instances
   * Accessed), IPF's Gazelle-validated choice; '110104' (DICOM Instances Transferred) follows the
   * RAD TF-3 table literally (SPEC-NOTES §12 open point 1).
   */
  radRequesterEventId?: '110103' | '110104';
  /**
   * Upper bound for one record (bytes of UTF-8 XML). Imaging records that would exceed it drop the
   * per-instance details first, then the Instance elements (counts and series are kept).
   * Default 900 000 (fits a 1 MiB RFC 5425 frame with room for the header).
   */
  maxRecordBytes?: number;
  /** Process id written as AlternativeUserID of this application (default process.pid). */
  processId?: string;
}

const b64 = (s: string | Buffer): string =>
  (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('base64');

function coded(name: string, c: Code, extra: Attr[] = []): string {
  return element(name, [
    ['csd-code', c.code],
    ['codeSystemName', c.system],
    ['originalText', c.text],
    ...extra,
  ]);
}

function dateTime(d: Date): string {
  return d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : new Date().toISOString();
}

function napAttrs(nap: string | undefined): Attr[] {
  if (!nap) return [];
  const host = nap.startsWith('[') && nap.endsWith(']') ? nap.slice(1, -1) : nap;
  return [
    ['NetworkAccessPointID', host],
    ['NetworkAccessPointTypeCode', isIP(host) ? 2 : 1],
  ];
}

function eventIdentification(
  id: Code,
  action: 'C' | 'R' | 'U' | 'D' | 'E',
  when: Date,
  outcome: EventOutcome,
  types: Code[],
  description: string | undefined,
  purposes: readonly PurposeOfUse[] = [],
): string {
  let inner = coded('EventID', id);
  for (const t of types) inner += coded('EventTypeCode', t);
  if (description) inner += element('EventOutcomeDescription', [], escapeText(description));
  for (const p of purposes) {
    inner += coded('PurposeOfUse', {
      code: p.code,
      system: p.codeSystem ?? 'unknown',
      text: p.displayName ?? p.code,
    });
  }
  return element(
    'EventIdentification',
    [
      ['EventActionCode', action],
      ['EventDateTime', dateTime(when)],
      ['EventOutcomeIndicator', outcome],
    ],
    inner,
  );
}

function participant(
  p: AuditParticipant,
  isRequestor: boolean,
  role: Code | undefined,
  withAlternative: boolean,
): string {
  return element(
    'ActiveParticipant',
    [
      ['UserID', p.userId || 'unknown'],
      ['AlternativeUserID', withAlternative ? p.alternativeUserId : undefined],
      ['UserName', p.certificateSubject],
      ['UserIsRequestor', isRequestor],
      ...napAttrs(p.networkAccessPointId),
    ],
    role ? coded('RoleIDCode', role) : '',
  );
}

function human(h: HumanRequestor): string {
  const roles = h.roles
    .map((r) =>
      coded('RoleIDCode', { code: r.code, system: r.codeSystem ?? 'unknown', text: r.displayName ?? r.code }),
    )
    .join('');
  return element(
    'ActiveParticipant',
    [
      ['UserID', h.userId || 'unknown'],
      ['UserName', h.userName],
      ['UserIsRequestor', true],
    ],
    roles,
  );
}

/**
 * R6 (MHLW guideline §6.5 C4, §7.1): every record names the person behind the request or says that
 * none was known. Without a validated XUA assertion this participant stands for the human
 * requestor; the requesting system is named as always (its address and certificate subject).
 */
export const USER_UNKNOWN: HumanRequestor = { userId: 'user-unknown', userName: 'user unknown', roles: [] };

function humanRequestors(e: TransactionAuditEvent): string {
  return (e.humanRequestors.length > 0 ? e.humanRequestors : [USER_UNKNOWN]).map(human).join('');
}

function auditSource(source: AuditSourceInfo): string {
  const type = source.auditSourceTypeCode ?? '4';
  const text = SOURCE_TYPE_TEXT[type];
  return element(
    'AuditSourceIdentification',
    [
      ['AuditEnterpriseSiteID', source.auditEnterpriseSiteId],
      ['AuditSourceID', source.auditSourceId],
    ],
    element('AuditSourceTypeCode', [
      ['csd-code', type],
      ['codeSystemName', text ? DCM : undefined],
      ['originalText', text],
    ]),
  );
}

function detail(type: string, value: string): string {
  return element('ParticipantObjectDetail', [
    ['type', type],
    ['value', b64(value)],
  ]);
}

function object(
  id: string | undefined,
  typeCode: 1 | 2 | 3 | 4,
  role: number | undefined,
  idType: Code,
  body: string,
): string {
  return element(
    'ParticipantObjectIdentification',
    [
      ['ParticipantObjectID', id],
      ['ParticipantObjectTypeCode', typeCode],
      ['ParticipantObjectTypeCodeRole', role],
    ],
    coded('ParticipantObjectIDTypeCode', idType) + body,
  );
}

function patients(ids: string[]): string {
  return [...new Set(ids.filter((p) => p))].map((p) => object(p, 1, 1, ID_TYPE.patientNumber, '')).join('');
}

/**
 * The query recorded is cut at this many bytes (its full length noted): a hostile megabyte-sized
 * query would otherwise make a record over the ARR's frame limit, never delivered.
 */
const QUERY_MAX_BYTES = 256 * 1024;

function queryObject(e: TransactionAuditEvent): string {
  const tx = TRANSACTIONS[e.transaction];
  const q = e.query;
  let body = '';
  if (q && q.requestXml.length > 0)
    body += element(
      'ParticipantObjectQuery',
      [],
      q.requestXml.subarray(0, QUERY_MAX_BYTES).toString('base64'),
    );
  if (!tx.hl7v3) body += detail('QueryEncoding', 'UTF-8');
  if (q && q.requestXml.length > QUERY_MAX_BYTES)
    body += detail('QueryTruncatedFromBytes', String(q.requestXml.length));
  if (q?.homeCommunityId) body += detail(tx.homeDetail, q.homeCommunityId);
  return object(q?.storedQueryId, 2, 24, { code: e.transaction, system: IHE_TX, text: tx.name }, body);
}

function documentObjects(e: TransactionAuditEvent, g: AuditOutcomeGroup | undefined): string {
  const tx = TRANSACTIONS[e.transaction];
  return (g?.documents ?? [])
    .map((d) => {
      let body = detail('Repository Unique Id', d.repositoryUniqueId);
      if (d.homeCommunityId) body += detail(tx.homeDetail, d.homeCommunityId);
      return object(d.documentUniqueId, 2, 3, ID_TYPE.reportNumber, body);
    })
    .join('');
}

/** detailLevel 2: everything; 1: no per-instance details; 0: no Instance elements either. */
function studyObjects(
  e: TransactionAuditEvent,
  g: AuditOutcomeGroup | undefined,
  detailLevel: number,
): string {
  const tx = TRANSACTIONS[e.transaction];
  return (g?.studies ?? [])
    .map((s) => {
      let details = detail('Repository Unique Id', s.repositoryUniqueId);
      if (s.homeCommunityId) details += detail(tx.homeDetail, s.homeCommunityId);
      let count = 0;
      let instances = '';
      for (const series of s.series) {
        details += detail('Series Instance Unique Id', series.seriesInstanceUid);
        for (const uid of series.sopInstanceUids) {
          count++;
          if (detailLevel >= 2) details += detail('ihe:DocumentUniqueId', uid);
          if (detailLevel >= 1) instances += element('Instance', [['UID', uid]]);
        }
      }
      const description = element(
        'ParticipantObjectDescription',
        [],
        element('SOPClass', [['NumberOfInstances', count]], instances),
      );
      return object(s.studyInstanceUid, 2, 3, ID_TYPE.studyInstanceUid, details + description);
    })
    .join('');
}

function transactionMessages(e: TransactionAuditEvent, source: AuditSourceInfo, o: BuildOptions): string[] {
  const tx = TRANSACTIONS[e.transaction];
  const typeCode: Code = { code: e.transaction, system: IHE_TX, text: tx.name };
  const humans = humanRequestors(e);
  const src = auditSource(source);
  const pats = patients(e.patientIds);

  if (tx.kind === 'query' || tx.kind === 'submission') {
    // The requester is the Source (and requestor), the responder the Destination. A query is an Execute;
    // a submission (ITI TF-2 3.41.5.1 / 3.42.5.1) is an Export at the submitter and an Import at the
    // receiving repository or registry, and names the submission set.
    const [eventId, action]: [Code, 'E' | 'R' | 'C'] =
      tx.kind === 'query'
        ? [EVENT_ID.query, 'E']
        : e.side === 'requester'
          ? [EVENT_ID.export, 'R']
          : [EVENT_ID.import, 'C'];
    const head = eventIdentification(
      eventId,
      action,
      e.eventDateTime,
      e.outcome,
      [typeCode],
      e.outcomeDescription,
      e.purposesOfUse,
    );
    const parts =
      participant(e.requester, true, ROLE.source, true) +
      participant(e.responder, false, ROLE.destination, false);
    const subject =
      tx.kind === 'query' ? queryObject(e) : object(e.submissionSetUniqueId, 2, 20, SUBMISSION_SET, '');
    return [element('AuditMessage', [], head + parts + humans + src + pats + subject)];
  }

  // Retrieves: the data provider (responder) is the Source, the requester the Destination.
  let eventId: Code;
  let action: 'C' | 'R';
  if (tx.kind === 'documents') {
    [eventId, action] = e.side === 'responder' ? [EVENT_ID.export, 'R'] : [EVENT_ID.import, 'C'];
  } else if (e.side === 'responder') {
    [eventId, action] = [EVENT_ID.instancesTransferred, 'R'];
  } else {
    eventId = o.radRequesterEventId === '110104' ? EVENT_ID.instancesTransferred : EVENT_ID.instancesAccessed;
    action = 'C';
  }
  const parts =
    participant(e.responder, false, ROLE.source, false) +
    participant(e.requester, true, ROLE.destination, true);
  const groups: (AuditOutcomeGroup | undefined)[] = e.groups.length > 0 ? e.groups : [undefined];
  const max = o.maxRecordBytes ?? 900_000;
  return groups.flatMap((g) => {
    const head = eventIdentification(
      eventId,
      action,
      e.eventDateTime,
      g ? g.outcome : e.outcome,
      [typeCode],
      boundedDescription(
        g ? (g.description ?? (g.outcome === 0 ? undefined : e.outcomeDescription)) : e.outcomeDescription,
      ),
      e.purposesOfUse,
    );
    const build = (part: AuditOutcomeGroup | undefined, level: number): string => {
      const objs = tx.kind === 'documents' ? documentObjects(e, part) : studyObjects(e, part, level);
      return element('AuditMessage', [], head + parts + humans + src + pats + objs);
    };
    // Too big even with the least detail: the group's documents (studies) go into several records,
    // each of which an ARR can take (a record over its frame limit would never be delivered, and
    // would hold up every record spooled after it).
    const fit = (part: AuditOutcomeGroup | undefined): string[] => {
      let xml = build(part, 2);
      for (let level = 1; level >= 0 && tx.kind === 'studies' && Buffer.byteLength(xml) > max; level--)
        xml = build(part, level);
      const items = (tx.kind === 'documents' ? part?.documents : part?.studies) ?? [];
      if (!part || Buffer.byteLength(xml) <= max || items.length < 2) return [xml];
      const half = Math.ceil(items.length / 2);
      const withItems = (xs: typeof items): AuditOutcomeGroup =>
        tx.kind === 'documents'
          ? { ...part, documents: xs as AuditedDocument[] }
          : { ...part, studies: xs as AuditedStudy[] };
      return [...fit(withItems(items.slice(0, half))), ...fit(withItems(items.slice(half)))];
    };
    return fit(g);
  });
}

/** EventOutcomeDescription of at most DESCRIPTION_MAX characters (one error code per document adds up). */
const DESCRIPTION_MAX = 2_000;
function boundedDescription(d: string | undefined): string | undefined {
  if (d === undefined || d.length <= DESCRIPTION_MAX) return d;
  return `${d.slice(0, DESCRIPTION_MAX)}… (${d.length - DESCRIPTION_MAX} more characters)`;
}

function self(source: AuditSourceInfo, o: BuildOptions, role?: Code): string {
  return element(
    'ActiveParticipant',
    [
      ['UserID', source.applicationName ?? source.auditSourceId],
      ['AlternativeUserID', o.processId ?? String(process.pid)],
      ['UserIsRequestor', false],
      ...napAttrs(source.hostName ?? hostname()),
    ],
    role ? coded('RoleIDCode', role) : '',
  );
}

function securityMessage(e: SecurityAuditEvent, source: AuditSourceInfo, o: BuildOptions): string {
  const src = auditSource(source);
  const peer = e.peer;
  if (e.kind === 'application-start' || e.kind === 'application-stop') {
    const type = e.kind === 'application-start' ? EVENT_TYPE.applicationStart : EVENT_TYPE.applicationStop;
    const head = eventIdentification(
      EVENT_ID.applicationActivity,
      'E',
      e.eventDateTime,
      e.outcome,
      [type],
      e.description,
    );
    const launcher = peer ? participant(peer, true, ROLE.applicationLauncher, true) : '';
    return element('AuditMessage', [], head + self(source, o, ROLE.application) + launcher + src);
  }
  let types: Code[];
  let subjectType: Code;
  let subject: string | undefined;
  switch (e.kind) {
    case 'node-authentication-failure':
      types = [EVENT_TYPE.nodeAuthentication];
      subjectType = ID_TYPE.nodeId;
      subject = e.objectId ?? peer?.certificateSubject ?? peer?.networkAccessPointId ?? peer?.userId;
      break;
    case 'emergency-override':
      types = [EVENT_TYPE.emergencyOverrideStarted];
      subjectType = ID_TYPE.uri;
      subject = e.objectId ?? peer?.userId;
      break;
    case 'rejected-async-response':
      types = [EVENT_TYPE.useOfRestrictedFunction];
      subjectType = ID_TYPE.uri;
      subject = e.objectId ?? peer?.userId;
      break;
    case 'configuration-loaded': {
      const kinds =
        e.configurationKinds && e.configurationKinds.length > 0 ? e.configurationKinds : ['software'];
      types = kinds.map((k) =>
        k === 'security'
          ? EVENT_TYPE.securityConfiguration
          : k === 'network'
            ? EVENT_TYPE.networkConfiguration
            : EVENT_TYPE.softwareConfiguration,
      );
      subjectType = ID_TYPE.uri;
      subject = e.objectId;
      break;
    }
  }
  const head = eventIdentification(
    EVENT_ID.securityAlert,
    'E',
    e.eventDateTime,
    e.outcome,
    types,
    e.description,
    e.purposesOfUse,
  );
  // Security Alert (DICOM A.5.3.11): the reporting process, the performing node, the alert subject.
  const performer = peer ? participant(peer, true, undefined, true) : '';
  const users = (e.humanRequestors ?? []).map(human).join('');
  const obj =
    subject || e.description
      ? object(subject, 2, undefined, subjectType, detail('Alert Description', e.description))
      : '';
  const pats = patients(e.patientIds ?? []);
  return element('AuditMessage', [], head + self(source, o) + performer + users + src + pats + obj);
}

/**
 * Builds the AuditMessage XML for one event: one record per outcome group for retrieves, one
 * record otherwise. Pure function; throws only on programming errors (unknown transaction).
 */
export function buildAuditMessages(
  event: AuditEvent,
  source: AuditSourceInfo,
  options: BuildOptions = {},
): string[] {
  if (event.kind === 'transaction') {
    if (!TRANSACTIONS[event.transaction])
      throw new Error(`unknown audited transaction ${String(event.transaction)}`);
    return transactionMessages(event, source, options);
  }
  return [securityMessage(event, source, options)];
}
