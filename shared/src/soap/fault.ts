import { NS } from '../xml/ns';
import { escapeText } from '../xml/write';
import { newMessageId, WSA_ANONYMOUS } from './ids';

export type FaultCode = 'Sender' | 'Receiver' | 'MustUnderstand' | 'VersionMismatch' | 'DataEncodingUnknown';

/** WS-Addressing 1.0 SOAP binding fault subcodes. */
export type WsaFaultSubcode =
  | 'InvalidAddressingHeader'
  | 'MessageAddressingHeaderRequired'
  | 'ActionNotSupported'
  | 'DestinationUnreachable'
  | 'EndpointUnavailable';

/** WS-Security 1.1 fault subcodes (OASIS WSS SOAP Message Security, 12), written with their prefix. */
export type WsseFaultSubcode =
  'wsse:InvalidSecurity' | 'wsse:InvalidSecurityToken' | 'wsse:FailedAuthentication';

export const WSA_FAULT_ACTION = 'http://www.w3.org/2005/08/addressing/soap/fault';

/** A SOAP 1.2 fault: envelope, addressing and security problems (business errors are RegistryErrors). */
export class SoapFault extends Error {
  constructor(
    readonly code: FaultCode,
    readonly reason: string,
    /** A WS-Addressing subcode, or a WS-Security one (`wsse:` prefixed). */
    readonly wsaSubcode?: WsaFaultSubcode | WsseFaultSubcode,
    /** A detail string written into soap:Detail (no PHI). */
    readonly detail?: string,
  ) {
    super(reason);
    this.name = 'SoapFault';
  }

  /** SOAP 1.2 HTTP binding: Sender faults are 400, everything else 500. */
  get httpStatus(): number {
    return this.code === 'Sender' || this.code === 'VersionMismatch' || this.code === 'MustUnderstand'
      ? 400
      : 500;
  }

  static sender(reason: string, wsaSubcode?: WsaFaultSubcode): SoapFault {
    return new SoapFault('Sender', reason, wsaSubcode);
  }

  static receiver(reason: string): SoapFault {
    return new SoapFault('Receiver', reason);
  }
}

export function encodeFault(fault: SoapFault, relatesTo?: string, to?: string): string {
  const sub = !fault.wsaSubcode
    ? ''
    : fault.wsaSubcode.startsWith('wsse:')
      ? `<soap:Subcode><soap:Value xmlns:wsse="${NS.wsse}">${fault.wsaSubcode}</soap:Value></soap:Subcode>`
      : `<soap:Subcode><soap:Value>wsa:${fault.wsaSubcode}</soap:Value></soap:Subcode>`;
  const detail = fault.detail
    ? `<soap:Detail><xcai:detail xmlns:xcai="urn:xcai:fault">${escapeText(fault.detail)}</xcai:detail></soap:Detail>`
    : '';
  const rel = relatesTo ? `<wsa:RelatesTo>${escapeText(relatesTo)}</wsa:RelatesTo>` : '';
  const toH = to && to !== WSA_ANONYMOUS ? `<wsa:To>${escapeText(to)}</wsa:To>` : '';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soap:Envelope xmlns:soap="${NS.soap}" xmlns:wsa="${NS.wsa}">` +
    `<soap:Header><wsa:Action>${WSA_FAULT_ACTION}</wsa:Action><wsa:MessageID>${newMessageId()}</wsa:MessageID>${rel}${toH}</soap:Header>` +
    `<soap:Body><soap:Fault><soap:Code><soap:Value>soap:${fault.code}</soap:Value>${sub}</soap:Code>` +
    `<soap:Reason><soap:Text xml:lang="en">${escapeText(fault.reason)}</soap:Text></soap:Reason>${detail}</soap:Fault></soap:Body>` +
    `</soap:Envelope>`
  );
}
