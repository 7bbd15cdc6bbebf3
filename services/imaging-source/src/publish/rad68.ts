/**
 * RAD-68 Provide and Register Imaging Document Set – MTOM/XOP, sent by the bridge as an Imaging
 * Document Source (RAD TF-3 4.68): one SubmissionSet with the study's KOS manifest as its
 * DocumentEntry (and an RPLC association to the manifest it replaces), the KOS as an MTOM part.
 * The repository computes hash and size and registers the entry (ITI-42).
 */
import { Writable } from 'node:stream';
import {
  Action,
  AssociationType,
  decodeEnvelope,
  decodeRegistryResponse,
  encodeEnvelope,
  encodeProvideAndRegisterRequest,
  faultReason,
  MtomWriter,
  NS,
  newMessageId,
  outboundParticipants,
  readSoapMessage,
  submissionAuditEvent,
  ObjectType,
  type CodedValue,
  type Gateway,
  type PublishSettings,
  type RegistryError,
  type Status,
  type Submission,
  KOS_CODES,
  kosEntryCodes,
  modalityCode,
} from '@xcai/shared';
import { personName, str, type DicomJson } from '../archive/client';
import { derivedUid, derivedUuid, modalities, type Manifest } from './kos';

const CODES = {
  ...KOS_CODES,
  practiceRadiology: { code: 'R-3027B', scheme: 'SRT', display: 'Radiology' },
} satisfies Record<string, CodedValue>;

/** The affinity-domain patient id (CX) of the archive's PatientID / IssuerOfPatientID. */
export function affinityPatientId(ds: DicomJson, p: PublishSettings): string | undefined {
  const id = str(ds, '00100020');
  if (!id) return undefined;
  const issuer = str(ds, '00100021');
  const oid = (issuer && p.issuers[issuer]) || p.assigningAuthority;
  return `${id}^^^&${oid}&ISO`;
}

/** DICOM DA + TM (local, with an optional ±hhmm offset) as XDS UTC YYYYMMDDhhmmss. */
export function xdsTime(
  date: string | undefined,
  time: string | undefined,
  offset: string | undefined,
): string | undefined {
  if (!date || !/^\d{8}$/.test(date)) return undefined;
  const t = (time ?? '')
    .replace(/[^0-9.]/g, '')
    .split('.')[0]
    .padEnd(6, '0')
    .slice(0, 6);
  const o = /^([+-])(\d{2})(\d{2})$/.exec(offset ?? '');
  const local = Date.UTC(
    +date.slice(0, 4),
    +date.slice(4, 6) - 1,
    +date.slice(6, 8),
    +t.slice(0, 2),
    +t.slice(2, 4),
    +t.slice(4, 6),
  );
  const shift = o ? (o[1] === '-' ? -1 : 1) * (+o[2] * 60 + +o[3]) * 60_000 : 0;
  return new Date(local - shift).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

export interface PublishedEntry {
  entryUUID: string;
  uniqueId: string;
}

/** The submission of one manifest; `replaces` is the entry it supersedes (RPLC). */
export function manifestSubmission(
  m: Manifest,
  first: DicomJson,
  p: PublishSettings,
  replaces: PublishedEntry | undefined,
  now = new Date(),
): Submission {
  const patientId = affinityPatientId(first, p);
  if (!patientId) throw new Error('the study has no PatientID');
  const local = str(first, '00100020') ?? '';
  const issuer = str(first, '00100021');
  const sourcePatientId = issuer && /^[0-9.]+$/.test(issuer) ? `${local}^^^&${issuer}&ISO` : patientId;
  const studyUid = str(first, '0020000D') ?? '';
  const accession = str(first, '00080050');
  const entryUUID = derivedUuid(`entry|${m.sopInstanceUid}`);
  const setUUID = derivedUuid(`set|${m.sopInstanceUid}`);
  const nowXds = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const name = personName(first, '00100010');
  const author = p.institution
    ? [{ authorInstitution: [p.institution], authorPerson: '', authorRole: [], authorSpecialty: [] }]
    : [];
  return {
    submissionSet: {
      entryUUID: setUUID,
      uniqueId: derivedUid(`set|${m.sopInstanceUid}`),
      sourceId: p.sourceId,
      patientId,
      submissionTime: nowXds,
      contentTypeCode: CODES.typeImagingStudy,
      title: 'Imaging study manifest',
      author,
    },
    documents: [
      {
        entryUUID,
        uniqueId: m.sopInstanceUid,
        objectType: ObjectType.stableDocumentEntry,
        patientId,
        sourcePatientId,
        sourcePatientInfo: [
          `PID-3|${sourcePatientId}`,
          ...(name ? [`PID-5|${name.split('=').join('~')}`] : []),
          ...(str(first, '00100030') ? [`PID-7|${str(first, '00100030')}`] : []),
          ...(str(first, '00100040') ? [`PID-8|${str(first, '00100040')}`] : []),
        ],
        ...kosEntryCodes(CODES.practiceRadiology),
        eventCodeList: modalities(m.series).map(modalityCode),
        creationTime: nowXds,
        serviceStartTime: xdsTime(str(first, '00080020'), str(first, '00080030'), str(first, '00080201')),
        languageCode: p.languageCode,
        title: str(first, '00081030') ?? 'Imaging study',
        author,
        referenceIdList: [
          `${studyUid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID`,
          ...(accession
            ? [`${accession}^^^&${p.assigningAuthority}&ISO^urn:ihe:iti:xds:2013:accession`]
            : []),
        ],
      },
    ],
    associations: [
      {
        entryUUID: derivedUuid(`member|${m.sopInstanceUid}`),
        associationType: AssociationType.hasMember,
        sourceObject: setUUID,
        targetObject: entryUUID,
        submissionSetStatus: 'Original',
      },
      ...(replaces
        ? [
            {
              entryUUID: derivedUuid(`rplc|${m.sopInstanceUid}`),
              associationType: AssociationType.rplc,
              sourceObject: entryUUID,
              targetObject: replaces.entryUUID,
            },
          ]
        : []),
    ],
  };
}

export interface SubmitAnswer {
  status: Status;
  errors: RegistryError[];
}

/** Sends the submission with its manifest as RAD-68 and returns the repository's answer (audited). */
export async function sendRad68(
  gateway: Gateway,
  p: PublishSettings,
  sub: Submission,
  kos: Buffer,
  signal: AbortSignal,
): Promise<SubmitAnswer> {
  const messageId = newMessageId();
  const cid = `kos.${sub.documents[0].uniqueId}@bridge`;
  const xml = encodeEnvelope({
    action: Action.ITI41,
    messageId,
    to: p.repository.url,
    body: encodeProvideAndRegisterRequest(sub, { [sub.documents[0].entryUUID]: cid }),
    request: true,
  });
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  const w = new MtomWriter(sink, { action: Action.ITI41 });
  await w.writeRoot(xml);
  await w.writePartFromBuffer(cid, 'application/dicom', kos);
  await w.end();
  const target = {
    kind: 'local' as const,
    location: p.repository.url,
    label: 'repository',
    endpoint: p.repository,
  };
  let answer: SubmitAnswer | undefined;
  let failure: string | undefined;
  try {
    const res = await gateway.outbound.post({
      endpoint: p.repository,
      contentType: w.contentType,
      body: Buffer.concat(chunks),
      signal: AbortSignal.any([signal, AbortSignal.timeout(p.repository.timeoutMs)]),
      headersTimeoutMs: p.repository.timeoutMs,
    });
    const msg = await readSoapMessage(res.body, res.contentType, {
      maxRootBytes: p.repository.maxResponseBytes,
      maxPartHeaderBytes: 16 * 1024,
      maxParts: 4,
      maxTotalBytes: p.repository.maxResponseBytes,
    });
    await msg.attachments.discard();
    const env = decodeEnvelope(msg.envelope, gateway.limits.xml, false);
    if (env.payload.is(NS.soap, 'Fault'))
      throw new Error(`repository answered a SOAP fault: ${faultReason(env)}`);
    answer = decodeRegistryResponse(env.payload);
    return answer;
  } catch (e) {
    failure = (e as Error).message;
    throw e;
  } finally {
    gateway.audit.record(
      submissionAuditEvent({
        transaction: 'RAD-68',
        side: 'requester',
        submission: sub,
        status: answer?.status,
        errors: answer?.errors ?? [],
        participants: outboundParticipants(target),
        messageId,
        delivered: failure === undefined,
      }),
    );
  }
}
