/**
 * Reads the IHE XUA (ITI-40) claims out of a parsed SAML 2.0 Assertion. Pure extraction: nothing
 * here decides trust. In strict mode (used after the signature has been verified) missing required
 * parts and ambiguous single-valued attributes are errors; in lenient mode (logging of unverified
 * assertions) whatever is present is returned.
 */

import type { Element } from '@xmldom/xmldom';
import { NS_SAML2, attr, childElements, childrenNamed, optionalChild, textContent } from './dom';
import { XuaError } from './errors';

/** XUA attribute names (ITI TF-2 3.40.4.1.2; NHIN/Carequality alias for the home community). */
export const XUA_ATTRIBUTE = {
  subjectId: [
    'urn:oasis:names:tc:xspa:1.0:subject:subject-id',
    'urn:oasis:names:tc:xacml:1.0:subject:subject-id',
  ],
  role: ['urn:oasis:names:tc:xacml:2.0:subject:role'],
  organization: ['urn:oasis:names:tc:xspa:1.0:subject:organization'],
  organizationId: ['urn:oasis:names:tc:xspa:1.0:subject:organization-id'],
  homeCommunityId: ['urn:ihe:iti:xca:2010:homeCommunityId', 'urn:nhin:names:saml:homeCommunityId'],
  purposeOfUse: ['urn:oasis:names:tc:xspa:1.0:subject:purposeofuse'],
  patientId: ['urn:oasis:names:tc:xacml:2.0:resource:resource-id'],
} as const;

/** An HL7 v3 CE as carried in role / purpose-of-use attribute values (hl7:Role, hl7:PurposeOfUse, hl7:CE). */
export interface CodedValue {
  code: string;
  codeSystem?: string;
  codeSystemName?: string;
  displayName?: string;
}

export interface SubjectConfirmationInfo {
  method: string;
  notBefore?: Date;
  notOnOrAfter?: Date;
  recipient?: string;
}

export interface ConditionsInfo {
  notBefore?: Date;
  notOnOrAfter?: Date;
  /** One entry per AudienceRestriction; each restriction must be satisfied (SAML core 2.5.1.4). */
  audienceRestrictions: string[][];
  oneTimeUse: boolean;
  /** Condition elements this module does not understand (names), e.g. saml2:Condition xsi:type=… */
  unknown: string[];
}

export interface RawClaims {
  id?: string;
  version?: string;
  issueInstant?: Date;
  issuer?: string;
  subjectNameId?: string;
  subjectNameIdFormat?: string;
  subjectConfirmations: SubjectConfirmationInfo[];
  conditions?: ConditionsInfo;
  subjectId?: string;
  roles: CodedValue[];
  organization?: string;
  organizationId?: string;
  homeCommunityId?: string;
  purposeOfUse: CodedValue[];
  patientId?: string;
  /** Every attribute by Name → trimmed text of each value (for coded values: the code). */
  attributes: Record<string, string[]>;
}

const DATE_TIME = /^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * xs:dateTime → Date. SAML requires UTC; a value without zone designator is taken as UTC, an
 * explicit offset is honoured. Anything else is malformed.
 */
export function parseDateTime(value: string, what: string): Date {
  const m = DATE_TIME.exec(value.trim());
  if (!m) throw new XuaError('malformed', `${what} "${value.slice(0, 40)}" is not an xs:dateTime`);
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    throw new XuaError('malformed', `${what} "${value.slice(0, 40)}" is out of range`);
  }
  let t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(t);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) {
    throw new XuaError('malformed', `${what} "${value.slice(0, 40)}" is not a calendar date`);
  }
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const offset = (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
    t -= sign * offset;
  }
  if (!Number.isFinite(t)) throw new XuaError('malformed', `${what} is out of range`);
  return new Date(t);
}

function optionalDate(el: Element, name: string, strict: boolean): Date | undefined {
  const v = attr(el, name);
  if (v === undefined) return undefined;
  try {
    return parseDateTime(v, `${el.localName}/@${name}`);
  } catch (e) {
    if (strict) throw e;
    return undefined;
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

function codedValue(value: Element): CodedValue | undefined {
  const el = childElements(value)[0];
  if (el) {
    const code = nonEmpty(attr(el, 'code'));
    if (!code) return undefined;
    const out: CodedValue = { code };
    const codeSystem = nonEmpty(attr(el, 'codeSystem'));
    const codeSystemName = nonEmpty(attr(el, 'codeSystemName'));
    const displayName = nonEmpty(attr(el, 'displayName'));
    if (codeSystem) out.codeSystem = codeSystem;
    if (codeSystemName) out.codeSystemName = codeSystemName;
    if (displayName) out.displayName = displayName;
    return out;
  }
  const text = nonEmpty(textContent(value));
  return text ? { code: text } : undefined;
}

function readConditions(conditions: Element, strict: boolean): ConditionsInfo {
  const info: ConditionsInfo = {
    notBefore: optionalDate(conditions, 'NotBefore', strict),
    notOnOrAfter: optionalDate(conditions, 'NotOnOrAfter', strict),
    audienceRestrictions: [],
    oneTimeUse: false,
    unknown: [],
  };
  for (const c of childElements(conditions)) {
    const ns = c.namespaceURI ?? '';
    if (ns === NS_SAML2 && c.localName === 'AudienceRestriction') {
      info.audienceRestrictions.push(
        childrenNamed(c, NS_SAML2, 'Audience')
          .map((a) => textContent(a).trim())
          .filter((a) => a.length > 0),
      );
    } else if (ns === NS_SAML2 && c.localName === 'OneTimeUse') {
      info.oneTimeUse = true;
    } else if (ns === NS_SAML2 && c.localName === 'ProxyRestriction') {
      // Limits re-issuing of assertions by the relying party; the gateway never issues any.
    } else {
      info.unknown.push(c.nodeName);
    }
  }
  return info;
}

/** Extracts claims from an Assertion element. `strict` makes ambiguity and bad dates errors. */
export function readClaims(assertion: Element, strict: boolean): RawClaims {
  // Strict: a duplicated singleton (two Issuers, two Subjects, …) is malformed. Lenient: first wins.
  const one = (parent: Element, local: string): Element | undefined =>
    strict ? optionalChild(parent, NS_SAML2, local) : childrenNamed(parent, NS_SAML2, local)[0];
  const claims: RawClaims = {
    id: nonEmpty(attr(assertion, 'ID')),
    version: attr(assertion, 'Version'),
    subjectConfirmations: [],
    roles: [],
    purposeOfUse: [],
    attributes: Object.create(null) as Record<string, string[]>,
  };
  const issueInstant = optionalDate(assertion, 'IssueInstant', strict);
  if (issueInstant) claims.issueInstant = issueInstant;

  const issuer = one(assertion, 'Issuer');
  if (issuer) claims.issuer = nonEmpty(textContent(issuer));

  const subject = one(assertion, 'Subject');
  if (subject) {
    const nameId = one(subject, 'NameID');
    if (nameId) {
      claims.subjectNameId = nonEmpty(textContent(nameId));
      const format = nonEmpty(attr(nameId, 'Format'));
      if (format) claims.subjectNameIdFormat = format;
    }
    for (const sc of childrenNamed(subject, NS_SAML2, 'SubjectConfirmation')) {
      const info: SubjectConfirmationInfo = { method: attr(sc, 'Method') ?? '' };
      const data = one(sc, 'SubjectConfirmationData');
      if (data) {
        info.notBefore = optionalDate(data, 'NotBefore', strict);
        info.notOnOrAfter = optionalDate(data, 'NotOnOrAfter', strict);
        const recipient = nonEmpty(attr(data, 'Recipient'));
        if (recipient) info.recipient = recipient;
      }
      claims.subjectConfirmations.push(info);
    }
  }

  const conditions = one(assertion, 'Conditions');
  if (conditions) claims.conditions = readConditions(conditions, strict);

  // Attribute values, grouped by Name across all AttributeStatements.
  const values = new Map<string, Element[]>();
  for (const statement of childrenNamed(assertion, NS_SAML2, 'AttributeStatement')) {
    for (const attribute of childrenNamed(statement, NS_SAML2, 'Attribute')) {
      const name = attr(attribute, 'Name');
      if (!name) continue;
      const list = values.get(name) ?? [];
      list.push(...childrenNamed(attribute, NS_SAML2, 'AttributeValue'));
      values.set(name, list);
    }
  }
  for (const [name, list] of values) {
    claims.attributes[name] = list
      .map((v) => (childElements(v).length > 0 ? (codedValue(v)?.code ?? '') : textContent(v).trim()))
      .filter((v) => v.length > 0);
  }

  const texts = (names: readonly string[]): string[] => {
    const out: string[] = [];
    for (const n of names) for (const v of claims.attributes[n] ?? []) if (!out.includes(v)) out.push(v);
    return out;
  };
  const single = (names: readonly string[], label: string): string | undefined => {
    const all = texts(names);
    if (all.length > 1 && strict) {
      throw new XuaError('malformed', `attribute ${label} has ${all.length} different values, expected one`);
    }
    return all[0];
  };
  const coded = (names: readonly string[]): CodedValue[] => {
    const out: CodedValue[] = [];
    for (const n of names) {
      for (const v of values.get(n) ?? []) {
        const c = codedValue(v);
        if (c) out.push(c);
      }
    }
    return out;
  };

  claims.subjectId = single(XUA_ATTRIBUTE.subjectId, 'subject-id');
  claims.organization = single(XUA_ATTRIBUTE.organization, 'organization');
  claims.organizationId = single(XUA_ATTRIBUTE.organizationId, 'organization-id');
  claims.homeCommunityId = single(XUA_ATTRIBUTE.homeCommunityId, 'homeCommunityId');
  claims.patientId = single(XUA_ATTRIBUTE.patientId, 'resource-id');
  claims.roles = coded(XUA_ATTRIBUTE.role);
  claims.purposeOfUse = coded(XUA_ATTRIBUTE.purposeOfUse);
  for (const key of Object.keys(claims) as (keyof RawClaims)[]) {
    if (claims[key] === undefined) delete claims[key];
  }
  return claims;
}
