/**
 * The parts of HL7 V3 (Normative Edition 2008 XML ITS) that patient discovery uses: instance ids,
 * person names with their Japanese representations, addresses and the demographics of one person.
 * Used by PRPA_IN201305UV02 / PRPA_IN201306UV02, the messages of both ITI-55 (XCPD) and ITI-47
 * (PDQv3).
 */

export const HL7_NS = 'urn:hl7-org:v3';

/** HL7 V3 instance identifier (II): an OID (or UUID) root and an optional extension. */
export interface InstanceId {
  root: string;
  extension?: string;
}

/**
 * The script a name is written in (EntityNameUse, HL7 V3 NE2008): ABC alphabetic (romaji), IDE
 * ideographic (kanji), SYL syllabic (kana). Japanese records carry the same name in IDE and SYL.
 */
export type NameRepresentation = 'ABC' | 'IDE' | 'SYL';

export interface PersonName {
  family: string[];
  given: string[];
  prefix: string[];
  suffix: string[];
  /** The `use` codes as sent (e.g. `L IDE`). */
  use: string[];
}

export interface PostalAddress {
  streetAddressLine: string[];
  city?: string;
  state?: string;
  postalCode?: string;
  country?: string;
}

export type AdministrativeGender = 'M' | 'F' | 'UN';

/** What a Patient Demographics Supplier knows of one person (and what a query asks about). */
export interface Demographics {
  names: PersonName[];
  gender?: AdministrativeGender;
  /** HL7 TS, e.g. `19650312` (a date) or a longer timestamp. */
  birthTime?: string;
  addresses: PostalAddress[];
}

/** The transmission wrapper's sender or receiver device. */
export interface Device {
  id: InstanceId;
  /** Endpoint URL (receiver telecom). */
  telecom?: string;
  /** XCPD: the homeCommunityId (as a bare OID) of the community the device acts for. */
  organization?: string;
}

export const EMPTY_NAME: PersonName = { family: [], given: [], prefix: [], suffix: [], use: [] };

/** The representation a name is written in: its use code if it has one, else the script it uses. */
export function representationOf(n: PersonName): NameRepresentation {
  for (const u of n.use) if (u === 'IDE' || u === 'SYL' || u === 'ABC') return u;
  const text = [...n.family, ...n.given].join('');
  if (/[\p{Script=Han}]/u.test(text)) return 'IDE';
  if (/^[\p{Script=Hiragana}\p{Script=Katakana}ー・\s]+$/u.test(text)) return 'SYL';
  return 'ABC';
}
