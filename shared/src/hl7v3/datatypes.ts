/**
 * HL7 V3 data types (NE2008 datatypes-base.xsd) as this product writes and reads them: II, PN/EN,
 * AD, TS, CE. Writers take a tag name because the same type appears under many element names.
 */
import type { XmlElement } from '../xml/parse';
import { attrs, escapeText } from '../xml/write';
import {
  HL7_NS,
  type AdministrativeGender,
  type Device,
  type InstanceId,
  type PersonName,
  type PostalAddress,
} from './model';

/** Largest number of any repeating element (names, ids, addresses, subjects) we read from one message. */
export const MAX_REPEATS = 50;
/** Longest text of a name part or address line we accept. */
export const MAX_PART_CHARS = 200;

export function encodeIi(tag: string, ii: InstanceId): string {
  return `<${tag}${attrs({ root: ii.root, extension: ii.extension })}/>`;
}

export function encodeName(tag: string, n: PersonName): string {
  const parts = [
    ...n.prefix.map((p) => `<prefix>${escapeText(p)}</prefix>`),
    ...n.family.map((p) => `<family>${escapeText(p)}</family>`),
    ...n.given.map((p) => `<given>${escapeText(p)}</given>`),
    ...n.suffix.map((p) => `<suffix>${escapeText(p)}</suffix>`),
  ].join('');
  return `<${tag}${attrs({ use: n.use.length ? n.use.join(' ') : undefined })}>${parts}</${tag}>`;
}

export function encodeAddress(tag: string, a: PostalAddress): string {
  const part = (name: string, v: string | undefined) => (v ? `<${name}>${escapeText(v)}</${name}>` : '');
  return (
    `<${tag}>` +
    a.streetAddressLine.map((l) => part('streetAddressLine', l)).join('') +
    part('city', a.city) +
    part('state', a.state) +
    part('postalCode', a.postalCode) +
    part('country', a.country) +
    `</${tag}>`
  );
}

/** HL7 TS of a moment, to the second, in UTC (`YYYYMMDDHHMMSS+0000`). */
export function hl7Now(d = new Date()): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + '+0000';
}

/** A transmission-wrapper device (sender or receiver). */
export function encodeDevice(tag: 'sender' | 'receiver', d: Device): string {
  const telecom = d.telecom ? `<telecom${attrs({ value: d.telecom })}/>` : '';
  const agent = d.organization
    ? `<asAgent classCode="AGNT"><representedOrganization classCode="ORG" determinerCode="INSTANCE">` +
      `${encodeIi('id', { root: d.organization })}</representedOrganization></asAgent>`
    : '';
  const typeCode = tag === 'sender' ? 'SND' : 'RCV';
  return (
    `<${tag} typeCode="${typeCode}"><device classCode="DEV" determinerCode="INSTANCE">` +
    `${encodeIi('id', d.id)}${telecom}${agent}</device></${tag}>`
  );
}

// ---- reading ---------------------------------------------------------------------------------

export function hl7Child(el: XmlElement | undefined, local: string): XmlElement | undefined {
  return el?.child(HL7_NS, local);
}

export function hl7Children(el: XmlElement | undefined, local: string): XmlElement[] {
  return el ? el.childrenNamed(HL7_NS, local) : [];
}

/** Follows a path of HL7 child elements. */
export function hl7Path(el: XmlElement | undefined, ...path: string[]): XmlElement | undefined {
  let cur = el;
  for (const p of path) cur = hl7Child(cur, p);
  return cur;
}

export function decodeIi(el: XmlElement | undefined): InstanceId | undefined {
  const root = el?.attr('root')?.trim();
  if (!el || !root || el.attr('nullFlavor')) return undefined;
  const extension = el.attr('extension')?.trim();
  return extension ? { root, extension } : { root };
}

function partText(el: XmlElement): string {
  return el.text.trim().slice(0, MAX_PART_CHARS);
}

export function decodeName(el: XmlElement): PersonName {
  const parts = (local: string) => hl7Children(el, local).slice(0, MAX_REPEATS).map(partText).filter(Boolean);
  const n: PersonName = {
    family: parts('family'),
    given: parts('given'),
    prefix: parts('prefix'),
    suffix: parts('suffix'),
    use: (el.attr('use') ?? '').split(/\s+/).filter(Boolean),
  };
  // A name written as plain text without parts (allowed for EN/PN): keep it as one family part.
  if (!n.family.length && !n.given.length && el.text.trim()) n.family = [partText(el)];
  return n;
}

export function decodeAddress(el: XmlElement): PostalAddress {
  const one = (local: string) => {
    const c = hl7Child(el, local);
    return c ? partText(c) || undefined : undefined;
  };
  return {
    streetAddressLine: hl7Children(el, 'streetAddressLine').slice(0, MAX_REPEATS).map(partText),
    city: one('city'),
    state: one('state'),
    postalCode: one('postalCode'),
    country: one('country'),
  };
}

export function decodeGender(code: string | undefined): AdministrativeGender | undefined {
  return code === 'M' || code === 'F' || code === 'UN' ? code : undefined;
}

/** An HL7 TS value (`YYYY[MM[DD[HH[MM[SS]]]]][.f][±ZZZZ]`); undefined when it is not one. */
export function decodeTs(v: string | undefined): string | undefined {
  const s = v?.trim();
  return s && /^\d{4}(\d{2}){0,5}(\.\d{1,4})?([+-]\d{4})?$/.test(s) ? s : undefined;
}

export function decodeDevice(el: XmlElement | undefined): Device | undefined {
  const device = hl7Child(el, 'device');
  const id = decodeIi(hl7Child(device, 'id'));
  if (!id) return undefined;
  const org = decodeIi(hl7Path(device, 'asAgent', 'representedOrganization', 'id'));
  return {
    id,
    telecom: hl7Child(device, 'telecom')?.attr('value'),
    organization: org?.root,
  };
}
