import { NS } from '../xml/ns';
import { escapeAttr } from '../xml/write';
import { Action } from '../transactions/actions';
import { HL7_NS } from '../hl7v3/model';

/**
 * WSDL 1.1 documents for our endpoints, generated from the facts that define each IHE web service
 * (operation, message elements, WS-Addressing actions, SOAP 1.2 document/literal binding). The
 * message types are declared permissively here; the IHE schemas define their content.
 */
export interface WsdlSpec {
  /** e.g. RespondingGateway */
  service: string;
  targetNamespace: string;
  operations: {
    name: string;
    input: { ns: string; element: string; action: string };
    /** Absent for one-way operations (async response receivers). */
    output?: { ns: string; element: string; action: string };
  }[];
  documentation: string;
}

export function renderWsdl(spec: WsdlSpec, address: string): string {
  const prefixes = new Map<string, string>();
  const pfx = (ns: string) => {
    let p = prefixes.get(ns);
    if (!p) prefixes.set(ns, (p = `m${prefixes.size}`));
    return p;
  };
  const elements = new Map<string, Set<string>>();
  const addEl = (ns: string, el: string) => {
    const s = elements.get(ns) ?? new Set();
    s.add(el);
    elements.set(ns, s);
  };
  for (const op of spec.operations) {
    addEl(op.input.ns, op.input.element);
    if (op.output) addEl(op.output.ns, op.output.element);
  }
  const schemas = [...elements]
    .map(
      ([ns, els]) =>
        `<xsd:schema targetNamespace="${escapeAttr(ns)}" elementFormDefault="qualified">` +
        [...els]
          .map(
            (e) =>
              `<xsd:element name="${e}"><xsd:complexType><xsd:sequence><xsd:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xsd:sequence><xsd:anyAttribute processContents="lax"/></xsd:complexType></xsd:element>`,
          )
          .join('') +
        `</xsd:schema>`,
    )
    .join('');
  const messages = spec.operations
    .map((op) => {
      const inMsg = `<message name="${op.name}_Message"><part name="body" element="${pfx(op.input.ns)}:${op.input.element}"/></message>`;
      const outMsg = op.output
        ? `<message name="${op.name}Response_Message"><part name="body" element="${pfx(op.output.ns)}:${op.output.element}"/></message>`
        : '';
      return inMsg + outMsg;
    })
    .join('');
  const portOps = spec.operations
    .map(
      (op) =>
        `<operation name="${op.name}"><input message="tns:${op.name}_Message" wsam:Action="${op.input.action}"/>` +
        (op.output
          ? `<output message="tns:${op.name}Response_Message" wsam:Action="${op.output.action}"/>`
          : '') +
        `</operation>`,
    )
    .join('');
  const bindOps = spec.operations
    .map(
      (op) =>
        `<operation name="${op.name}"><soap12:operation soapActionRequired="false"/><input><soap12:body use="literal"/></input>` +
        (op.output ? `<output><soap12:body use="literal"/></output>` : '') +
        `</operation>`,
    )
    .join('');
  const nsDecls = [...prefixes].map(([ns, p]) => ` xmlns:${p}="${escapeAttr(ns)}"`).join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<definitions name="${spec.service}" targetNamespace="${escapeAttr(spec.targetNamespace)}" xmlns="http://schemas.xmlsoap.org/wsdl/" ` +
    `xmlns:tns="${escapeAttr(spec.targetNamespace)}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" ` +
    `xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:wsam="http://www.w3.org/2007/05/addressing/metadata" ` +
    `xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl"${nsDecls}>` +
    `<documentation>${spec.documentation}</documentation>` +
    `<types>${schemas}</types>${messages}` +
    `<portType name="${spec.service}_PortType">${portOps}</portType>` +
    `<binding name="${spec.service}_Binding_Soap12" type="tns:${spec.service}_PortType">` +
    `<wsaw:UsingAddressing/><soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>${bindOps}</binding>` +
    `<service name="${spec.service}_Service"><port name="${spec.service}_Port_Soap12" binding="tns:${spec.service}_Binding_Soap12">` +
    `<soap12:address location="${escapeAttr(address)}"/></port></service></definitions>`
  );
}

const q = (element: string) => ({ ns: NS.query, element });
const rs = (element: string) => ({ ns: NS.xdsb, element });
const img = { ns: NS.xdsi, element: 'RetrieveImagingDocumentSetRequest' };

/** The WSDL of each transaction this product serves, by the transaction name. */
export const WSDL_SPECS: Record<string, WsdlSpec> = {
  'ITI-18': {
    service: 'DocumentRegistry',
    targetNamespace: NS.xdsb,
    documentation: 'XCA Initiating Gateway, XDS Affinity Domain option: ITI-18 Registry Stored Query',
    operations: [
      {
        name: 'DocumentRegistry_RegistryStoredQuery',
        input: { ...q('AdhocQueryRequest'), action: Action.ITI18 },
        output: { ...q('AdhocQueryResponse'), action: Action.ITI18Response },
      },
    ],
  },
  'ITI-43': {
    service: 'DocumentRepository',
    targetNamespace: NS.xdsb,
    documentation: 'XCA Initiating Gateway, XDS Affinity Domain option: ITI-43 Retrieve Document Set (MTOM)',
    operations: [
      {
        name: 'DocumentRepository_RetrieveDocumentSet',
        input: { ...rs('RetrieveDocumentSetRequest'), action: Action.ITI43 },
        output: { ...rs('RetrieveDocumentSetResponse'), action: Action.ITI43Response },
      },
    ],
  },
  'RAD-69': {
    service: 'ImagingDocumentSource',
    targetNamespace: NS.xdsi,
    documentation: 'XCA-I Initiating Imaging Gateway: RAD-69 Retrieve Imaging Document Set (MTOM)',
    operations: [
      {
        name: 'ImagingDocumentSource_RetrieveImagingDocumentSet',
        input: { ...img, action: Action.RAD69 },
        output: { ...rs('RetrieveDocumentSetResponse'), action: Action.RAD69Response },
      },
    ],
  },
  'ITI-38': {
    service: 'RespondingGateway',
    targetNamespace: NS.xdsb,
    documentation: 'XCA Responding Gateway: ITI-38 Cross Gateway Query',
    operations: [
      {
        name: 'RespondingGateway_CrossGatewayQuery',
        input: { ...q('AdhocQueryRequest'), action: Action.ITI38 },
        output: { ...q('AdhocQueryResponse'), action: Action.ITI38Response },
      },
    ],
  },
  'ITI-39': {
    service: 'RespondingGateway',
    targetNamespace: NS.xdsb,
    documentation: 'XCA Responding Gateway: ITI-39 Cross Gateway Retrieve (MTOM)',
    operations: [
      {
        name: 'RespondingGateway_CrossGatewayRetrieve',
        input: { ...rs('RetrieveDocumentSetRequest'), action: Action.ITI39 },
        output: { ...rs('RetrieveDocumentSetResponse'), action: Action.ITI39Response },
      },
    ],
  },
  'RAD-75': {
    service: 'RespondingImagingGateway',
    targetNamespace: NS.xdsi,
    documentation:
      'XCA-I Responding Imaging Gateway: RAD-75 Cross Gateway Retrieve Imaging Document Set (MTOM)',
    operations: [
      {
        name: 'RespondingGateway_CrossGatewayRetrieveImagingDocumentSet',
        input: { ...img, action: Action.RAD75 },
        output: { ...rs('RetrieveDocumentSetResponse'), action: Action.RAD75Response },
      },
    ],
  },
  'ITI-55': {
    service: 'RespondingGateway',
    targetNamespace: 'urn:ihe:iti:xcpd:2009',
    documentation: 'XCPD Responding Gateway: ITI-55 Cross Gateway Patient Discovery',
    operations: [
      {
        name: 'RespondingGateway_PRPA_IN201305UV02',
        input: { ns: HL7_NS, element: 'PRPA_IN201305UV02', action: Action.ITI55 },
        output: { ns: HL7_NS, element: 'PRPA_IN201306UV02', action: Action.ITI55Response },
      },
    ],
  },
  'ITI-47': {
    service: 'PDSupplier',
    targetNamespace: 'urn:ihe:iti:pdqv3:2007',
    documentation: 'PDQv3 Patient Demographics Supplier: ITI-47 Patient Demographics Query',
    operations: [
      {
        name: 'PDSupplier_PRPA_IN201305UV02',
        input: { ns: HL7_NS, element: 'PRPA_IN201305UV02', action: Action.ITI47 },
        output: { ns: HL7_NS, element: 'PRPA_IN201306UV02', action: Action.ITI47Response },
      },
    ],
  },
  'async-response': {
    service: 'InitiatingGateway',
    targetNamespace: NS.xdsb,
    documentation:
      'XCA / XCA-I Initiating Gateway: asynchronous response receiver for ITI-38, ITI-39 and RAD-75 (one-way)',
    operations: [
      {
        name: 'InitiatingGateway_Async_CrossGatewayQueryResponse',
        input: { ...q('AdhocQueryResponse'), action: Action.ITI38Response },
      },
      {
        name: 'InitiatingGateway_Async_CrossGatewayRetrieveResponse',
        input: { ...rs('RetrieveDocumentSetResponse'), action: Action.ITI39Response },
      },
      {
        name: 'InitiatingGateway_Async_CrossGatewayRetrieveImagingDocumentSetResponse',
        input: { ...rs('RetrieveDocumentSetResponse'), action: Action.RAD75Response },
      },
    ],
  },
};
