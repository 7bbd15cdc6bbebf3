import { Interner } from '../util/intern';
import { NS } from '../xml/ns';
import type { XmlElement } from '../xml/parse';
import { attrs, textElement } from '../xml/write';
import { SoapFault } from '../soap/fault';
import {
  decodeRegistryErrors,
  encodeRegistryErrorList,
  STATUS_URN,
  statusFromUrn,
  type RegistryError,
  type Status,
} from '../ebrim/status';

/** xdsb:DocumentRequest (ITI-43, ITI-39, and inside RAD-69/75 SeriesRequests). */
export interface DocumentRequest {
  homeCommunityId?: string;
  repositoryUniqueId: string;
  documentUniqueId: string;
}

/** An RAD-69/75 request: studies → series → documents (SOP instances), plus the TS list. */
export interface ImagingRequest {
  studies: StudyRequest[];
  /** In the consumer's order of preference. */
  transferSyntaxUids: string[];
}

export interface StudyRequest {
  studyInstanceUid: string;
  series: SeriesRequest[];
}

export interface SeriesRequest {
  seriesInstanceUid: string;
  documents: DocumentRequest[];
}

const MAX_ID = 256;

function idText(el: XmlElement | undefined, what: string, required: true, ids: Interner): string;
function idText(el: XmlElement | undefined, what: string, required: false, ids: Interner): string | undefined;
function idText(
  el: XmlElement | undefined,
  what: string,
  required: boolean,
  ids: Interner,
): string | undefined {
  const v = el?.trimmedText();
  if (v === undefined || v === '') {
    if (required) throw SoapFault.sender(`${what} is missing or empty`);
    return undefined;
  }
  if (v.length > MAX_ID) throw SoapFault.sender(`${what} longer than ${MAX_ID} characters`);
  return ids.get(v);
}

function decodeDocumentRequest(el: XmlElement, ids: Interner): DocumentRequest {
  return {
    homeCommunityId: idText(el.child(NS.xdsb, 'HomeCommunityId'), 'HomeCommunityId', false, ids),
    repositoryUniqueId: idText(el.child(NS.xdsb, 'RepositoryUniqueId'), 'RepositoryUniqueId', true, ids),
    documentUniqueId: idText(el.child(NS.xdsb, 'DocumentUniqueId'), 'DocumentUniqueId', true, ids),
  };
}

export function decodeRetrieveDocumentSetRequest(el: XmlElement): DocumentRequest[] {
  if (!el.is(NS.xdsb, 'RetrieveDocumentSetRequest')) {
    throw SoapFault.sender(`expected xdsb:RetrieveDocumentSetRequest, found {${el.ns}}${el.local}`);
  }
  const ids = new Interner();
  const docs = el.childrenNamed(NS.xdsb, 'DocumentRequest').map((d) => decodeDocumentRequest(d, ids));
  if (docs.length === 0) throw SoapFault.sender('RetrieveDocumentSetRequest has no DocumentRequest');
  return docs;
}

export function decodeRetrieveImagingDocumentSetRequest(el: XmlElement): ImagingRequest {
  if (!el.is(NS.xdsi, 'RetrieveImagingDocumentSetRequest')) {
    throw SoapFault.sender(`expected xdsi:RetrieveImagingDocumentSetRequest, found {${el.ns}}${el.local}`);
  }
  const ids = new Interner();
  const studies = el.childrenNamed(NS.xdsi, 'StudyRequest').map((s) => ({
    studyInstanceUid: ids.get((s.attr('studyInstanceUID') ?? '').trim()),
    series: s.childrenNamed(NS.xdsi, 'SeriesRequest').map((r) => ({
      seriesInstanceUid: ids.get((r.attr('seriesInstanceUID') ?? '').trim()),
      documents: r.childrenNamed(NS.xdsb, 'DocumentRequest').map((d) => decodeDocumentRequest(d, ids)),
    })),
  }));
  const tsList = el.child(NS.xdsi, 'TransferSyntaxUIDList');
  return {
    studies,
    transferSyntaxUids: (tsList?.childrenNamed(NS.xdsi, 'TransferSyntaxUID') ?? []).map((t) =>
      ids.get(t.trimmedText()),
    ),
  };
}

function encodeDocumentRequest(d: DocumentRequest): string {
  return (
    `<xdsb:DocumentRequest>` +
    (d.homeCommunityId ? textElement('xdsb:HomeCommunityId', d.homeCommunityId) : '') +
    textElement('xdsb:RepositoryUniqueId', d.repositoryUniqueId) +
    textElement('xdsb:DocumentUniqueId', d.documentUniqueId) +
    `</xdsb:DocumentRequest>`
  );
}

export function encodeRetrieveDocumentSetRequest(docs: DocumentRequest[]): string {
  return `<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="${NS.xdsb}">${docs.map(encodeDocumentRequest).join('')}</xdsb:RetrieveDocumentSetRequest>`;
}

export function encodeRetrieveImagingDocumentSetRequest(req: ImagingRequest): string {
  const studies = req.studies
    .map(
      (s) =>
        `<xdsi:StudyRequest${attrs({ studyInstanceUID: s.studyInstanceUid })}>` +
        s.series
          .map(
            (r) =>
              `<xdsi:SeriesRequest${attrs({ seriesInstanceUID: r.seriesInstanceUid })}>${r.documents.map(encodeDocumentRequest).join('')}</xdsi:SeriesRequest>`,
          )
          .join('') +
        `</xdsi:StudyRequest>`,
    )
    .join('');
  const ts = req.transferSyntaxUids.map((t) => textElement('xdsi:TransferSyntaxUID', t)).join('');
  return (
    `<xdsi:RetrieveImagingDocumentSetRequest xmlns:xdsi="${NS.xdsi}" xmlns:xdsb="${NS.xdsb}">` +
    `${studies}<xdsi:TransferSyntaxUIDList>${ts}</xdsi:TransferSyntaxUIDList></xdsi:RetrieveImagingDocumentSetRequest>`
  );
}

/** Every DocumentRequest of an imaging request with its study and series. */
export interface ImagingDocumentRef extends DocumentRequest {
  studyInstanceUid: string;
  seriesInstanceUid: string;
}

export function imagingDocuments(req: ImagingRequest): ImagingDocumentRef[] {
  return req.studies.flatMap((s) =>
    s.series.flatMap((r) =>
      r.documents.map((d) => ({
        ...d,
        studyInstanceUid: s.studyInstanceUid,
        seriesInstanceUid: r.seriesInstanceUid,
      })),
    ),
  );
}

/** Rebuilds the Study/Series nesting (in first-seen order) for a subset of documents. */
export function nestImagingDocuments(
  docs: ImagingDocumentRef[],
  transferSyntaxUids: string[],
): ImagingRequest {
  const studies = new Map<string, Map<string, DocumentRequest[]>>();
  for (const d of docs) {
    let series = studies.get(d.studyInstanceUid);
    if (!series) studies.set(d.studyInstanceUid, (series = new Map()));
    let list = series.get(d.seriesInstanceUid);
    if (!list) series.set(d.seriesInstanceUid, (list = []));
    list.push({
      homeCommunityId: d.homeCommunityId,
      repositoryUniqueId: d.repositoryUniqueId,
      documentUniqueId: d.documentUniqueId,
    });
  }
  return {
    studies: [...studies].map(([studyInstanceUid, series]) => ({
      studyInstanceUid,
      series: [...series].map(([seriesInstanceUid, documents]) => ({ seriesInstanceUid, documents })),
    })),
    transferSyntaxUids,
  };
}

/** Where a DocumentResponse's bytes are: an XOP attachment or inline base64. */
export type DocumentContent = { kind: 'xop'; href: string } | { kind: 'inline'; base64: string };

export interface DocumentResponseMeta {
  homeCommunityId?: string;
  repositoryUniqueId: string;
  documentUniqueId: string;
  newRepositoryUniqueId?: string;
  newDocumentUniqueId?: string;
  mimeType: string;
}

export interface DecodedDocumentResponse extends DocumentResponseMeta {
  content: DocumentContent;
}

export interface RetrieveResponseRoot {
  status: Status;
  errors: RegistryError[];
  documents: DecodedDocumentResponse[];
}

/** Decodes the root of a RetrieveDocumentSetResponse (ITI-43/39, RAD-69/75). */
export function decodeRetrieveDocumentSetResponse(el: XmlElement): RetrieveResponseRoot {
  if (!el.is(NS.xdsb, 'RetrieveDocumentSetResponse')) {
    throw new Error(`expected xdsb:RetrieveDocumentSetResponse, found {${el.ns}}${el.local}`);
  }
  const rr = el.child(NS.rs, 'RegistryResponse');
  if (!rr) throw new Error('RetrieveDocumentSetResponse without rs:RegistryResponse');
  const status = statusFromUrn(rr.attr('status'));
  if (!status) throw new Error(`RegistryResponse has no valid status (${rr.attr('status') ?? 'missing'})`);
  const ids = new Interner();
  const documents = el.childrenNamed(NS.xdsb, 'DocumentResponse').map((d): DecodedDocumentResponse => {
    const text = (name: string) => ids.get(d.child(NS.xdsb, name)?.trimmedText() || undefined);
    const docEl = d.child(NS.xdsb, 'Document');
    if (!docEl) throw new Error('DocumentResponse without Document');
    const include = docEl.child(NS.xop, 'Include');
    const content: DocumentContent = include
      ? { kind: 'xop', href: ids.get(include.attr('href') ?? '') }
      : { kind: 'inline', base64: docEl.text };
    const repositoryUniqueId = text('RepositoryUniqueId');
    const documentUniqueId = text('DocumentUniqueId');
    if (!repositoryUniqueId || !documentUniqueId)
      throw new Error('DocumentResponse without RepositoryUniqueId/DocumentUniqueId');
    return {
      homeCommunityId: text('HomeCommunityId'),
      repositoryUniqueId,
      documentUniqueId,
      newRepositoryUniqueId: text('NewRepositoryUniqueId'),
      newDocumentUniqueId: text('NewDocumentUniqueId'),
      mimeType: text('mimeType') ?? 'application/octet-stream',
      content,
    };
  });
  return { status, errors: decodeRegistryErrors(rr), documents };
}

/** One DocumentResponse whose Document is an xop:Include of `contentId` (our ids need no URL-escaping). */
export function encodeDocumentResponse(d: DocumentResponseMeta, contentId: string): string {
  return (
    `<xdsb:DocumentResponse>` +
    (d.homeCommunityId ? textElement('xdsb:HomeCommunityId', d.homeCommunityId) : '') +
    textElement('xdsb:RepositoryUniqueId', d.repositoryUniqueId) +
    textElement('xdsb:DocumentUniqueId', d.documentUniqueId) +
    (d.newRepositoryUniqueId ? textElement('xdsb:NewRepositoryUniqueId', d.newRepositoryUniqueId) : '') +
    (d.newDocumentUniqueId ? textElement('xdsb:NewDocumentUniqueId', d.newDocumentUniqueId) : '') +
    textElement('xdsb:mimeType', d.mimeType) +
    `<xdsb:Document><xop:Include xmlns:xop="${NS.xop}"${attrs({ href: `cid:${contentId}` })}/></xdsb:Document>` +
    `</xdsb:DocumentResponse>`
  );
}

/** The response root: RegistryResponse then the DocumentResponses (already encoded). */
export function encodeRetrieveDocumentSetResponse(
  status: Status,
  errors: RegistryError[],
  documentResponses: string[],
): string {
  return (
    `<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="${NS.xdsb}">` +
    `<rs:RegistryResponse xmlns:rs="${NS.rs}"${attrs({ status: STATUS_URN[status] })}>${encodeRegistryErrorList(errors)}</rs:RegistryResponse>` +
    documentResponses.join('') +
    `</xdsb:RetrieveDocumentSetResponse>`
  );
}
