import { NS } from '../xml/ns';
import { escapeAttr, escapeText } from '../xml/write';
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
  /** Header blocks a MustUnderstand fault names in soap:NotUnderstood (SOAP 1.2 Part 1 §5.4.8). */
  readonly notUnderstood?: { ns: string; local: string }[];
  /** The MessageID of the message this fault answers, when it could be read before the fault. */
  relatesTo?: string;

  constructor(
    readonly code: FaultCode,
    readonly reason: string,
    /** A WS-Addressing subcode, or a WS-Security one (`wsse:` prefixed). */
    readonly wsaSubcode?: WsaFaultSubcode | WsseFaultSubcode,
    /** A detail string written into soap:Detail (no PHI). */
    readonly detail?: string,
    extra: { notUnderstood?: { ns: string; local: string }[] } = {},
  ) {
    super(reason);
    this.name = 'SoapFault';
    if (extra.notUnderstood) this.notUnderstood = extra.notUnderstood;
  }

  /**
   * SOAP 1.2 Part 2 §7.5.2.2 (Table 20, fault to HTTP status): env:Sender → 400 Bad Request;
   * env:VersionMismatch, env:MustUnderstand, env:Receiver, env:DataEncodingUnknown → 500.
   */
  get httpStatus(): number {
    return this.code === 'Sender' ? 400 : 500;
  }

  static sender(reason: string, wsaSubcode?: WsaFaultSubcode): SoapFault {
    return new SoapFault('Sender', reason, wsaSubcode);
  }

  static receiver(reason: string): SoapFault {
    return new SoapFault('Receiver', reason);
  }

  /** Faults caused by the message (its sender's), logged at warn; the others are ours, at error. */
  get senderFault(): boolean {
    return this.code !== 'Receiver';
  }
}

export function encodeFault(fault: SoapFault, relatesTo = fault.relatesTo, to?: string): string {
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
  const nu = (fault.notUnderstood ?? [])
    .map((h) => `<soap:NotUnderstood qname="nu:${h.local}" xmlns:nu="${escapeAttr(h.ns)}"/>`)
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soap:Envelope xmlns:soap="${NS.soap}" xmlns:wsa="${NS.wsa}">` +
    `<soap:Header><wsa:Action>${WSA_FAULT_ACTION}</wsa:Action><wsa:MessageID>${newMessageId()}</wsa:MessageID>${rel}${toH}${nu}</soap:Header>` +
    `<soap:Body><soap:Fault><soap:Code><soap:Value>soap:${fault.code}</soap:Value>${sub}</soap:Code>` +
    `<soap:Reason><soap:Text xml:lang="en">${escapeText(fault.reason)}</soap:Text></soap:Reason>${detail}</soap:Fault></soap:Body>` +
    `</soap:Envelope>`
  );
}
