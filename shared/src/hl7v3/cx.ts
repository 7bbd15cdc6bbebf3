import { isOid } from '../util/oid';
import type { InstanceId } from './model';

/**
 * Patient ids cross two notations here: XDS metadata and stored queries write them in HL7 v2 CX form
 * (`JP1001^^^&1.2.3&ISO`, ITI TF-3 4.2.3.1.7), HL7 V3 as an II (`root="1.2.3" extension="JP1001"`,
 * ITI TF-2 Appendix E).
 */
export interface PatientId {
  id: string;
  /** The assigning authority's universal id (an OID). */
  assigningAuthority: string;
}

const CX = /^([^^&~\\|]{1,256})\^\^\^([^&^~\\|]*)&([0-9.]{1,64})&ISO$/;

/** Reads `ID^^^[namespace]&OID&ISO`; undefined for anything else. */
export function parsePatientCx(cx: string): PatientId | undefined {
  const m = CX.exec(cx.trim());
  if (!m || !isOid(m[3])) return undefined;
  return { id: m[1], assigningAuthority: m[3] };
}

export function patientCx(p: PatientId): string {
  return `${p.id}^^^&${p.assigningAuthority}&ISO`;
}

export function patientIdToIi(p: PatientId): InstanceId {
  return { root: p.assigningAuthority, extension: p.id };
}

/** An II naming a patient (OID root and an extension without CX delimiters); undefined otherwise. */
export function iiToPatientId(ii: InstanceId): PatientId | undefined {
  if (!ii.extension || !isOid(ii.root)) return undefined;
  if (/[\^&~\\|]/.test(ii.extension) || ii.extension.length > 256) return undefined;
  return { id: ii.extension, assigningAuthority: ii.root };
}

/** A homeCommunityId (`urn:oid:…`) as the bare OID HL7 V3 carries, and back. */
export function homeOid(homeCommunityId: string): string {
  return homeCommunityId.replace(/^urn:oid:/, '');
}

export function homeUrn(oid: string): string {
  return oid.startsWith('urn:oid:') ? oid : `urn:oid:${oid}`;
}
