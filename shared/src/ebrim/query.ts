import { NS } from '../xml/ns';
import type { XmlDocument, XmlElement } from '../xml/parse';
import { attrs, escapeText, relayElement, type AttributeEdits } from '../xml/write';
import { SoapFault } from '../soap/fault';
import { ErrorCode } from './error-codes';
import {
  ParamSyntaxError,
  parseParamValue,
  quoteParam,
  StoredQuery,
  storedQueryName,
  type QueryParams,
  type StoredQueryName,
} from './stored-query';
import {
  decodeRegistryErrors,
  encodeRegistryErrorList,
  STATUS_URN,
  statusFromUrn,
  registryError,
  type RegistryError,
  type Status,
} from './status';

export type ReturnType = 'LeafClass' | 'ObjectRef';

/** A decoded AdhocQueryRequest (ITI-18 / ITI-38). */
export interface AdhocQueryRequest {
  doc: XmlDocument;
  element: XmlElement;
  returnType: ReturnType;
  returnComposedObjects: boolean;
  /** The stored query id as sent. */
  queryId: string;
  /** Known stored query, or undefined (→ XDSUnknownStoredQuery). */
  query?: StoredQueryName;
  /** `home` attribute of rim:AdhocQuery. */
  home?: string;
  params: QueryParams;
  /** Problems found while reading parameters (become RegistryErrors). */
  errors: RegistryError[];
}

export function decodeAdhocQueryRequest(doc: XmlDocument, el: XmlElement): AdhocQueryRequest {
  if (!el.is(NS.query, 'AdhocQueryRequest')) {
    throw SoapFault.sender(`expected query:AdhocQueryRequest, found {${el.ns}}${el.local}`);
  }
  const opt = el.child(NS.query, 'ResponseOption');
  const rt = opt?.attr('returnType') ?? 'LeafClass';
  if (rt !== 'LeafClass' && rt !== 'ObjectRef') throw SoapFault.sender(`unsupported returnType ${rt}`);
  const q = el.child(NS.rim, 'AdhocQuery');
  if (!q) throw SoapFault.sender('rim:AdhocQuery missing');
  const queryId = q.attr('id') ?? '';
  const errors: RegistryError[] = [];
  const params: QueryParams = new Map();
  for (const slot of q.childrenNamed(NS.rim, 'Slot')) {
    const name = slot.attr('name') ?? '';
    const values: string[] = [];
    for (const v of slot.child(NS.rim, 'ValueList')?.childrenNamed(NS.rim, 'Value') ?? []) {
      try {
        values.push(...parseParamValue(v.text));
      } catch (e) {
        if (!(e instanceof ParamSyntaxError)) throw e;
        errors.push(registryError(ErrorCode.RegistryError, `parameter ${name}: ${e.message}`, name));
      }
    }
    const list = params.get(name) ?? [];
    list.push(values);
    params.set(name, list);
  }
  return {
    doc,
    element: el,
    returnType: rt,
    returnComposedObjects: opt?.attr('returnComposedObjects') === 'true',
    queryId,
    query: storedQueryName(queryId),
    home: q.attr('home')?.trim() || undefined,
    params,
    errors,
  };
}

/** The request element relayed unchanged except for `home` on rim:AdhocQuery (undefined removes it). */
export function adhocQueryRequestXml(
  req: AdhocQueryRequest,
  home: string | undefined,
  returnType?: ReturnType,
): string {
  const q = req.element.child(NS.rim, 'AdhocQuery');
  if (!q) throw new Error('unreachable: AdhocQuery checked at decode');
  const edits = new Map<XmlElement, AttributeEdits>([[q, { home: home ?? null }]]);
  const option = req.element.child(NS.query, 'ResponseOption');
  if (returnType && option) edits.set(option, { returnType });
  return relayElement(req.doc, req.element, { descendantEdits: edits });
}

/** A decoded AdhocQueryResponse: status, errors and the top-level registry objects. */
export interface AdhocQueryResponse {
  doc: XmlDocument;
  status: Status;
  errors: RegistryError[];
  /** Children of rim:RegistryObjectList, in order. */
  objects: XmlElement[];
}

export function decodeAdhocQueryResponse(doc: XmlDocument, el: XmlElement): AdhocQueryResponse {
  if (!el.is(NS.query, 'AdhocQueryResponse')) {
    throw new Error(`expected query:AdhocQueryResponse, found {${el.ns}}${el.local}`);
  }
  const status = statusFromUrn(el.attr('status'));
  if (!status) throw new Error(`AdhocQueryResponse has no valid status (${el.attr('status') ?? 'missing'})`);
  const list = el.child(NS.rim, 'RegistryObjectList');
  return { doc, status, errors: decodeRegistryErrors(el), objects: list ? list.children : [] };
}

/**
 * Encodes an AdhocQueryResponse. `objects` are already-serialised registry objects (relayed
 * slices). Element order follows query.xsd: RegistryErrorList before RegistryObjectList.
 */
export function encodeAdhocQueryResponse(status: Status, errors: RegistryError[], objects: string[]): string {
  return (
    `<query:AdhocQueryResponse xmlns:query="${NS.query}"${attrs({ status: STATUS_URN[status] })}>` +
    encodeRegistryErrorList(errors) +
    `<rim:RegistryObjectList xmlns:rim="${NS.rim}">${objects.join('')}</rim:RegistryObjectList>` +
    `</query:AdhocQueryResponse>`
  );
}

/** ebRIM status of a current (not deprecated) document entry. */
export const APPROVED_STATUS = 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved';

/**
 * FindDocuments for one patient's Approved entries, the query a consumer sends first; `params` adds
 * or overrides parameters (e.g. a formatCode).
 */
export function encodeFindDocumentsRequest(
  patientId: string,
  o: { returnType?: ReturnType; home?: string; params?: Record<string, string | string[]> } = {},
): string {
  return encodeAdhocQueryRequest({
    queryId: StoredQuery.FindDocuments,
    returnType: o.returnType,
    home: o.home,
    params: {
      $XDSDocumentEntryPatientId: quoteParam(patientId),
      $XDSDocumentEntryStatus: `('${APPROVED_STATUS}')`,
      ...o.params,
    },
  });
}

/** Builds an AdhocQueryRequest body (used by tests, the demo consumer and the CLI probe). */
export function encodeAdhocQueryRequest(opts: {
  queryId: string;
  returnType?: ReturnType;
  home?: string;
  params: Record<string, string | string[]>;
}): string {
  const slots = Object.entries(opts.params)
    .map(([name, v]) => {
      const values = (Array.isArray(v) ? v : [v])
        .map((x) => `<rim:Value>${escapeText(x)}</rim:Value>`)
        .join('');
      return `<rim:Slot${attrs({ name })}><rim:ValueList>${values}</rim:ValueList></rim:Slot>`;
    })
    .join('');
  return (
    `<query:AdhocQueryRequest xmlns:query="${NS.query}" xmlns:rim="${NS.rim}">` +
    `<query:ResponseOption returnComposedObjects="true"${attrs({ returnType: opts.returnType ?? 'LeafClass' })}/>` +
    `<rim:AdhocQuery${attrs({ id: opts.queryId, home: opts.home })}>${slots}</rim:AdhocQuery>` +
    `</query:AdhocQueryRequest>`
  );
}
