/**
 * Consent documents of the seed (BPPC, ITI TF-1 §19): for some patients of a community, one
 * Privacy Policy Acknowledgement document each — a small CDA document (ITI TF-3 5.1.2, template
 * 1.3.6.1.4.1.19376.1.5.3.1.1.7) stored in the repository and registered with the XDS metadata
 * BPPC asks for: classCode 57016-8 (LOINC), formatCode urn:ihe:iti:bppc:2007, the acknowledged
 * policy OIDs in eventCodeList, the consent's effective time as serviceStartTime/serviceStopTime.
 *
 * The demo's Patient Privacy Policy Domain has two policies (DEMO_PRIVACY_POLICIES): sharing with
 * the regional network, and objecting to it. In community B Sato objects (opted out) and Tanaka
 * consents; Yamada has no consent document, so the region's default decides (seed/specs.ts). A
 * consent is part of the patient's spec, so it stays with the patient under every community's own
 * ids (seed/specs-xcpd.ts).
 *
 * UIDs under the community's uidRoot: .11.p.n consent document, .12.p.n its submission set.
 */
import { ObjectType } from '@xcai/shared';
import { childUid, Instant, parseCx, sha1Hex, stableUuid } from './ids';
import { ASSOCIATION, AVAILABILITY, CODES } from './xds';
import type {
  CodedValue,
  ConsentManifest,
  ConsentSpec,
  PatientSpec,
  SeedManifest,
  SeedSpec,
  XdsAuthor,
  XdsDocumentEntry,
} from './types';

/** The demo Patient Privacy Policy Domain and its policies (OIDs of the demo affinity domain's arc). */
export const DEMO_PRIVACY_POLICY_DOMAIN = '1.3.6.1.4.1.21367.13.20.1100';
export const DEMO_PRIVACY_POLICIES = {
  /** The patient agrees that the regional network shares their records with other institutions. */
  share: `${DEMO_PRIVACY_POLICY_DOMAIN}.1`,
  /** The patient objects to any sharing through the regional network (opt-out). */
  optOut: `${DEMO_PRIVACY_POLICY_DOMAIN}.2`,
} as const;

const POLICY_NAMES: Record<string, string> = {
  [DEMO_PRIVACY_POLICIES.share]: 'Share with the regional network',
  [DEMO_PRIVACY_POLICIES.optOut]: 'No sharing through the regional network',
};

const BPPC = {
  classCode: {
    code: '57016-8',
    scheme: '2.16.840.1.113883.6.1',
    display: 'Privacy Policy Acknowledgement Document',
  },
  formatCode: { code: 'urn:ihe:iti:bppc:2007', scheme: '1.3.6.1.4.1.19376.1.2.3', display: 'BPPC' },
} satisfies Record<string, CodedValue>;

/** The demo's acknowledgements: objecting to sharing (opted out), and agreeing to it. */
export const DEMO_CONSENTS = {
  optedOut: [{ policies: [DEMO_PRIVACY_POLICIES.optOut], date: '20240401' }],
  shared: [{ policies: [DEMO_PRIVACY_POLICIES.share], date: '20240401' }],
} satisfies Record<string, ConsentSpec[]>;

export function validateConsents(spec: SeedSpec): void {
  for (const p of spec.patients)
    for (const c of p.consents ?? []) {
      if (c.policies.length === 0) throw new Error(`consent of ${p.id}: at least one policy OID`);
      if (!/^\d{8}$/.test(c.date) || (c.until !== undefined && !/^\d{8}$/.test(c.until)))
        throw new Error(`consent of ${p.id}: dates are YYYYMMDD: ${c.date} ${c.until ?? ''}`);
    }
}

const esc = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

function consentCda(o: {
  uid: string;
  patient: PatientSpec;
  policies: string[];
  time: string;
  from: string;
  until?: string;
  custodian: { name: string; oid: string };
}): Buffer {
  const cx = parseCx(o.patient.id);
  const events = o.policies
    .map(
      (p, i) =>
        `<documentationOf typeCode="DOC"><serviceEvent classCode="ACT" moodCode="EVN">` +
        `<templateId root="1.3.6.1.4.1.19376.1.5.3.1.2.6"/><id root="${o.uid}.${i + 1}"/>` +
        `<code code="${p}" codeSystem="${DEMO_PRIVACY_POLICY_DOMAIN}" displayName="${esc(POLICY_NAMES[p] ?? p)}"/>` +
        `<effectiveTime><low value="${o.from}"/>${o.until ? `<high value="${o.until}"/>` : ''}</effectiveTime>` +
        `</serviceEvent></documentationOf>`,
    )
    .join('');
  const text = o.policies.map((p) => `<item>${esc(POLICY_NAMES[p] ?? p)} (${p})</item>`).join('');
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
      `<ClinicalDocument xmlns="urn:hl7-org:v3">` +
      `<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>` +
      `<templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.7"/><id root="${o.uid}"/>` +
      `<code code="57016-8" codeSystem="2.16.840.1.113883.6.1" displayName="Privacy Policy Acknowledgement Document"/>` +
      `<title>Privacy policy acknowledgement</title><effectiveTime value="${o.time}"/>` +
      `<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/><languageCode code="ja-JP"/>` +
      `<recordTarget><patientRole><id extension="${esc(cx.id)}" root="${cx.universalId}"/></patientRole></recordTarget>` +
      `<author><time value="${o.time}"/><assignedAuthor><id root="${o.custodian.oid}"/></assignedAuthor></author>` +
      `<custodian><assignedCustodian><representedCustodianOrganization><id root="${o.custodian.oid}"/>` +
      `<name>${esc(o.custodian.name)}</name></representedCustodianOrganization></assignedCustodian></custodian>` +
      events +
      `<component><structuredBody><component><section><title>Acknowledged policies</title>` +
      `<text><list>${text}</list></text></section></component></structuredBody></component>` +
      `</ClinicalDocument>\n`,
    'utf8',
  );
}

/** The consent documents of a spec, written through `write`; their metadata for the registry. */
export async function generateConsents(
  spec: SeedSpec,
  c: { utcOffset: string; institution: { name: string; oid: string }; sourceId: string; author: XdsAuthor },
  write: (path: string, data: Buffer) => Promise<void>,
): Promise<ConsentManifest> {
  const out: ConsentManifest = { documentEntries: [], submissionSets: [], associations: [] };
  const consents = spec.patients.flatMap((patient, i) =>
    (patient.consents ?? []).map((consent, k) => ({ patient, consent, pi: i + 1, n: k + 1 })),
  );
  for (const { patient, consent, pi, n } of consents) {
    const uniqueId = childUid(spec.uidRoot, 11, pi, n);
    const signed = Instant.fromLocal(consent.date, '100000', c.utcOffset);
    const bytes = consentCda({
      uid: uniqueId,
      patient,
      policies: consent.policies,
      time: signed.utc(),
      from: consent.date,
      until: consent.until,
      custodian: c.institution,
    });
    const path = `consent/${uniqueId}.xml`;
    await write(path, bytes);
    const entryUUID = stableUuid(spec.homeCommunityId, 'DocumentEntry', uniqueId);
    const entry: XdsDocumentEntry = {
      entryUUID,
      uniqueId,
      homeCommunityId: spec.homeCommunityId,
      objectType: ObjectType.stableDocumentEntry,
      patientId: patient.id,
      sourcePatientId: patient.localId ?? patient.id,
      sourcePatientInfo: [`PID-3|${patient.localId ?? patient.id}`],
      mimeType: 'text/xml',
      formatCode: BPPC.formatCode,
      classCode: BPPC.classCode,
      typeCode: BPPC.classCode,
      confidentialityCode: [CODES.confidentialityNormal],
      healthcareFacilityTypeCode: CODES.facilityHospital,
      practiceSettingCode: CODES.practiceRadiology,
      eventCodeList: consent.policies.map((p) => ({
        code: p,
        scheme: DEMO_PRIVACY_POLICY_DOMAIN,
        display: POLICY_NAMES[p] ?? p,
      })),
      creationTime: signed.utc(),
      serviceStartTime: Instant.fromLocal(consent.date, '000000', c.utcOffset).utc(),
      ...(consent.until
        ? { serviceStopTime: Instant.fromLocal(consent.until, '000000', c.utcOffset).utc() }
        : {}),
      languageCode: 'ja-JP',
      title: 'Privacy policy acknowledgement',
      hash: sha1Hex(bytes),
      size: bytes.length,
      repositoryUniqueId: spec.repositoryUniqueId,
      availabilityStatus: AVAILABILITY.approved,
      author: [c.author],
      referenceIdList: [],
      path,
    };
    out.documentEntries.push(entry);
    const setUid = childUid(spec.uidRoot, 12, pi, n);
    const setUUID = stableUuid(spec.homeCommunityId, 'SubmissionSet', setUid);
    out.submissionSets.push({
      entryUUID: setUUID,
      uniqueId: setUid,
      sourceId: c.sourceId,
      homeCommunityId: spec.homeCommunityId,
      patientId: patient.id,
      submissionTime: signed.plusMinutes(5).utc(),
      contentTypeCode: BPPC.classCode,
      title: `Community ${spec.community}: privacy policy acknowledgement`,
      author: [c.author],
      availabilityStatus: AVAILABILITY.approved,
    });
    out.associations.push({
      entryUUID: stableUuid(spec.homeCommunityId, 'HasMember', setUid, uniqueId),
      associationType: ASSOCIATION.hasMember,
      sourceObject: setUUID,
      targetObject: entryUUID,
      submissionSetStatus: 'Original',
    });
  }
  return out;
}

/**
 * The consent settings of the demo's Responding Gateways: an opt-out region (sharing unless the
 * patient objects), consent read from the community's registry (BPPC).
 */
export function demoConsentDirectory(): Record<string, unknown> {
  return {
    source: 'bppc',
    default: 'permit',
    permit: [DEMO_PRIVACY_POLICIES.share],
    deny: [DEMO_PRIVACY_POLICIES.optOut],
  };
}

/** A seeded consent document as the demo shows it. */
export interface SeededConsent {
  community: string;
  /** The patient's id in that community (CX). */
  patientId: string;
  name: string;
  /** Display names of the acknowledged policies. */
  acknowledged: string[];
  /** The patient objects to sharing: the community answers as if it did not know them. */
  optedOut: boolean;
}

/** Every consent document of the manifests, with the patient's name. */
export function seededConsents(
  manifests: Record<string, Pick<SeedManifest, 'patients' | 'consents'>>,
): SeededConsent[] {
  return Object.entries(manifests).flatMap(([community, m]) =>
    (m.consents?.documentEntries ?? []).map((d) => ({
      community,
      patientId: d.patientId,
      name: m.patients.find((p) => p.id === d.patientId)?.displayName ?? '',
      acknowledged: d.eventCodeList.map((c) => c.display),
      optedOut: d.eventCodeList.some((c) => c.code === DEMO_PRIVACY_POLICIES.optOut),
    })),
  );
}

/** One line of the demo's summary. */
export function consentLine(c: SeededConsent): string {
  const effect = c.optedOut
    ? `community ${c.community} answers as if it did not know the patient (ITI-55 and ITI-38)`
    : `community ${c.community} shares`;
  return `  ${c.name}  ${c.patientId}  in ${c.community}: ${c.acknowledged.join(', ')} → ${effect}`;
}
