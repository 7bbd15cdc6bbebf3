/**
 * Seed data of one reference community: DICOM image instances for its Imaging Document Source, one KOS
 * manifest per study for its repository, and the XDS metadata its registry serves — all derived from a
 * SeedSpec, deterministically (same spec, same UIDs and bytes).
 *
 * UIDs under spec.uidRoot (p = patient, s = study, k = series, i = instance, v = manifest version, 1-based):
 *   .1.p.s study · .2.p.s.k series · .3.p.s.k.i instance · .4.p.s.k frame of reference · .5.p.s KOS series ·
 *   .6.p.s.v KOS instance = XDS document uniqueId · .7.p.s.v submission set uniqueId · .8 institution ·
 *   .9 submission set sourceId · .10 accession number issuer · .11/.12 consent documents (consent.ts)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { kosEntryCodes, ObjectType } from '@xcai/shared';
import { encodeText, hl7PersonName, personNameValue } from './charset';
import { explicitFor, TS_EXPLICIT_VR_LE } from './dicom';
import {
  assertDate,
  assertTime,
  assertUid,
  childUid,
  Instant,
  offsetMinutes,
  parseCx,
  sha1Hex,
  stableUuid,
} from './ids';
import { buildImage, sopClassForModality, type PatientContext, type StudyContext } from './iod';
import { buildKos, type KosSeriesRef } from './kos';
import { ASSOCIATION, AVAILABILITY, CODES, modalityCode, REFERENCE_ID_TYPE } from './xds';
import { generateConsents, validateConsents } from './consent';
import type {
  ManifestKos,
  ManifestPatient,
  ManifestSeries,
  ManifestStudy,
  PatientSpec,
  SeedManifest,
  SeedSpec,
  StudySpec,
  XdsAssociation,
  XdsAuthor,
  XdsDocumentEntry,
  XdsSubmissionSet,
} from './types';

export type * from './types';
export { readKos, type KosContents, type KosSeries } from './kos';
export { defaultDemoSpecs, largeSeedSpec } from './specs';
export { XCPD_DEMO_AUTHORITIES, xcpdDemoPatientIds, xcpdDemoSpecs } from './specs-xcpd';

export const GENERATOR = { name: 'xcai-reference-community-seed', version: 1 } as const;

const DEFAULT_UTC_OFFSET = '+0900';
const DEFAULT_STUDY_TIME = '090000';
const KOS_SERIES_NUMBER = 999;
/** minutes after the study start */
const KOS_CREATED_AFTER = 60;
const PRELIMINARY_KOS_CREATED_AFTER = 20;
const REPLACING_KOS_CREATED_AFTER = 24 * 60;
const SUBMITTED_AFTER_CREATION = 5;
/** parallel file writes */
const WRITE_CONCURRENCY = 8;

/** Writes files with bounded concurrency, so generating the next instance overlaps the disk writes. */
class FileWriter {
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly outDir: string) {}

  async write(relativePath: string, data: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    const full = join(this.outDir, ...relativePath.split('/'));
    const p: Promise<void> = mkdir(dirname(full), { recursive: true })
      .then(() => writeFile(full, data))
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
    if (this.pending.size >= WRITE_CONCURRENCY) await Promise.race(this.pending);
  }

  async flush(): Promise<void> {
    await Promise.all(this.pending);
    if (this.failure) throw this.failure;
  }
}

function checkText(value: string, max: number, what: string): void {
  if ([...value].length > max) throw new Error(`${what} is longer than ${max} characters: ${value}`);
}

function instanceCounts(study: StudySpec): number[] {
  const { series, instancesPerSeries } = study;
  if (!Number.isInteger(series) || series < 1)
    throw new Error(`series must be a positive integer: ${series}`);
  const counts = Array.isArray(instancesPerSeries)
    ? instancesPerSeries
    : Array.from({ length: series }, () => instancesPerSeries);
  if (counts.length !== series)
    throw new Error(`instancesPerSeries has ${counts.length} entries for ${series} series`);
  for (const c of counts) {
    if (!Number.isInteger(c) || c < 1)
      throw new Error(`instances per series must be positive integers: ${c}`);
  }
  return counts;
}

/** Checks a spec before anything is written; throws on the first problem. */
export function validateSeedSpec(spec: SeedSpec): void {
  if (!/^[A-Za-z0-9-]{1,8}$/.test(spec.community))
    throw new Error(`community label must be 1–8 of [A-Za-z0-9-]`);
  const hc = /^urn:oid:(.+)$/.exec(spec.homeCommunityId);
  if (!hc) throw new Error(`homeCommunityId must be urn:oid:…: ${spec.homeCommunityId}`);
  assertUid(hc[1], 'homeCommunityId');
  assertUid(spec.uidRoot, 'uidRoot');
  assertUid(spec.repositoryUniqueId, 'repositoryUniqueId');
  assertUid(spec.idsRepositoryUniqueId, 'idsRepositoryUniqueId');
  if (spec.sourceId !== undefined) assertUid(spec.sourceId, 'sourceId');
  if (spec.institution) assertUid(spec.institution.oid, 'institution.oid');
  offsetMinutes(spec.utcOffset ?? DEFAULT_UTC_OFFSET);
  if (spec.patients.length === 0) throw new Error('a seed needs at least one patient');
  for (const p of spec.patients) {
    const cx = parseCx(p.id);
    if (p.localId !== undefined) parseCx(p.localId);
    checkText(cx.id, 64, 'patient id');
    const cs = p.characterSet ?? 'ISO_IR 6';
    encodeText('ISO_IR 6', p.name.alphabetic);
    encodeText(cs, personNameValue(p.name));
    assertDate(p.birthDate, 'birthDate');
    if (!['M', 'F', 'O'].includes(p.sex)) throw new Error(`sex must be M, F or O: ${p.sex}`);
    for (const s of p.studies) {
      if (!/^[A-Z]{2}$/.test(s.modality))
        throw new Error(`modality must be a DICOM modality code: ${s.modality}`);
      assertDate(s.date, 'study date');
      assertTime(s.time ?? DEFAULT_STUDY_TIME, 'study time');
      checkText(s.description, 64, 'study description');
      encodeText(cs, s.description);
      if (s.accessionNumber !== undefined) {
        checkText(s.accessionNumber, 16, 'accessionNumber');
        encodeText('ISO_IR 6', s.accessionNumber);
      }
      instanceCounts(s);
      if (!Number.isInteger(s.instanceSize) || s.instanceSize < 1) {
        throw new Error(`instanceSize must be a positive integer: ${s.instanceSize}`);
      }
      for (const ts of s.transferSyntaxes ?? []) explicitFor(ts);
      if (s.transferSyntaxes?.length === 0) throw new Error('transferSyntaxes must not be empty');
    }
  }
  validateConsents(spec);
}

function displayName(p: PatientSpec): string {
  return (p.name.ideographic || p.name.alphabetic).replace(/\^+$/, '').replace(/\^/g, ' ');
}

/** Everything about one community needed while generating. */
interface Community {
  spec: SeedSpec;
  utcOffset: string;
  institution: { name: string; oid: string };
  sourceId: string;
  author: XdsAuthor;
}

interface StudyOutput {
  study: ManifestStudy;
  documentEntries: XdsDocumentEntry[];
  submissionSets: XdsSubmissionSet[];
  associations: XdsAssociation[];
}

async function generateStudy(
  c: Community,
  writer: FileWriter,
  patient: PatientSpec,
  patientCtx: PatientContext,
  pi: number,
  study: StudySpec,
  si: number,
): Promise<StudyOutput> {
  const root = c.spec.uidRoot;
  const time = study.time ?? DEFAULT_STUDY_TIME;
  const accessionNumber =
    study.accessionNumber ??
    `${c.spec.community}${String(pi).padStart(3, '0')}${String(si).padStart(3, '0')}`;
  const studyCtx: StudyContext = {
    studyInstanceUid: childUid(root, 1, pi, si),
    accessionNumber,
    description: study.description,
    date: study.date,
    time,
    utcOffset: c.utcOffset,
    institutionName: c.institution.name,
  };
  const transferSyntaxes = study.transferSyntaxes ?? [TS_EXPLICIT_VR_LE];
  const sopClassUid = sopClassForModality(study.modality);

  const series: ManifestSeries[] = [];
  const counts = instanceCounts(study);
  for (let k = 1; k <= counts.length; k++) {
    const seriesInstanceUid = childUid(root, 2, pi, si, k);
    const transferSyntaxUid = transferSyntaxes[(k - 1) % transferSyntaxes.length];
    const out: ManifestSeries = {
      seriesInstanceUid,
      seriesNumber: k,
      modality: study.modality,
      transferSyntaxUid,
      instances: [],
    };
    for (let i = 1; i <= counts[k - 1]; i++) {
      const sopInstanceUid = childUid(root, 3, pi, si, k, i);
      const bytes = buildImage({
        patient: patientCtx,
        study: studyCtx,
        modality: study.modality,
        sopInstanceUid,
        seriesInstanceUid,
        frameOfReferenceUid: childUid(root, 4, pi, si, k),
        seriesNumber: k,
        seriesDescription: `${study.modality} series ${k}`,
        instanceNumber: i,
        transferSyntaxUid,
        targetSize: study.instanceSize,
        seed: Buffer.from(sha1Hex(Buffer.from(sopInstanceUid)), 'hex').readUInt32BE(0),
      });
      const path = `instances/${studyCtx.studyInstanceUid}/${seriesInstanceUid}/${sopInstanceUid}.dcm`;
      await writer.write(path, bytes);
      out.instances.push({
        sopInstanceUid,
        sopClassUid,
        transferSyntaxUid,
        path,
        size: bytes.length,
        sha1: sha1Hex(bytes),
      });
    }
    series.push(out);
  }

  const studyStart = Instant.fromLocal(study.date, time, c.utcOffset);
  const refs = (s: ManifestSeries[]): KosSeriesRef[] =>
    s.map((x) => ({ seriesInstanceUid: x.seriesInstanceUid, instances: x.instances }));
  // manifest versions, oldest first: a preliminary one (first series only) when the study asks for it
  const versions = study.replacesEarlierManifest
    ? [
        {
          refs: refs(series.slice(0, 1)),
          after: PRELIMINARY_KOS_CREATED_AFTER,
          status: AVAILABILITY.deprecated,
        },
        { refs: refs(series), after: REPLACING_KOS_CREATED_AFTER, status: AVAILABILITY.approved },
      ]
    : [{ refs: refs(series), after: KOS_CREATED_AFTER, status: AVAILABILITY.approved }];

  const documentEntries: XdsDocumentEntry[] = [];
  const submissionSets: XdsSubmissionSet[] = [];
  const associations: XdsAssociation[] = [];
  const kosFiles: ManifestKos[] = [];
  for (let v = 1; v <= versions.length; v++) {
    const version = versions[v - 1];
    const created = studyStart.plusMinutes(version.after);
    const documentUniqueId = childUid(root, 6, pi, si, v);
    const bytes = buildKos({
      patient: patientCtx,
      study: studyCtx,
      sopInstanceUid: documentUniqueId,
      seriesInstanceUid: childUid(root, 5, pi, si),
      seriesNumber: KOS_SERIES_NUMBER,
      instanceNumber: v,
      content: created.local(c.utcOffset),
      retrieveLocationUid: c.spec.idsRepositoryUniqueId,
      series: version.refs,
    });
    const path = `kos/${documentUniqueId}.dcm`;
    await writer.write(path, bytes);
    const sha1 = sha1Hex(bytes);
    const entryUUID = stableUuid(c.spec.homeCommunityId, 'DocumentEntry', documentUniqueId);
    kosFiles.push({
      path,
      documentUniqueId,
      entryUUID,
      size: bytes.length,
      sha1,
      availabilityStatus: version.status,
    });
    const manifestTitle = v < versions.length ? 'imaging manifest (preliminary)' : 'imaging manifest';
    documentEntries.push({
      entryUUID,
      uniqueId: documentUniqueId,
      homeCommunityId: c.spec.homeCommunityId,
      objectType: ObjectType.stableDocumentEntry,
      patientId: patient.id,
      sourcePatientId: patient.localId ?? patient.id,
      sourcePatientInfo: [
        `PID-3|${patient.localId ?? patient.id}`,
        `PID-5|${hl7PersonName(patient.name)}`,
        `PID-7|${patient.birthDate}`,
        `PID-8|${patient.sex}`,
      ],
      ...kosEntryCodes(CODES.practiceRadiology),
      eventCodeList: [modalityCode(study.modality)],
      creationTime: created.utc(),
      serviceStartTime: studyStart.utc(),
      languageCode: 'ja-JP',
      title: `${study.description} - ${manifestTitle}`,
      hash: sha1,
      size: bytes.length,
      repositoryUniqueId: c.spec.repositoryUniqueId,
      availabilityStatus: version.status,
      author: [c.author],
      referenceIdList: [
        `${studyCtx.studyInstanceUid}^^^^${REFERENCE_ID_TYPE.studyInstanceUid}`,
        `${accessionNumber}^^^&${childUid(root, 10)}&ISO^${REFERENCE_ID_TYPE.accession}`,
      ],
      path,
    });
    const submissionSetUniqueId = childUid(root, 7, pi, si, v);
    const submissionSetUUID = stableUuid(c.spec.homeCommunityId, 'SubmissionSet', submissionSetUniqueId);
    submissionSets.push({
      entryUUID: submissionSetUUID,
      uniqueId: submissionSetUniqueId,
      sourceId: c.sourceId,
      homeCommunityId: c.spec.homeCommunityId,
      patientId: patient.id,
      submissionTime: created.plusMinutes(SUBMITTED_AFTER_CREATION).utc(),
      contentTypeCode: CODES.typeImagingStudy,
      title: `Community ${c.spec.community}: ${study.description}`,
      author: [c.author],
      availabilityStatus: AVAILABILITY.approved,
    });
    associations.push({
      entryUUID: stableUuid(c.spec.homeCommunityId, 'HasMember', submissionSetUniqueId, documentUniqueId),
      associationType: ASSOCIATION.hasMember,
      sourceObject: submissionSetUUID,
      targetObject: entryUUID,
      submissionSetStatus: 'Original',
    });
    if (v > 1) {
      const replaced = kosFiles[v - 2];
      associations.push({
        entryUUID: stableUuid(c.spec.homeCommunityId, 'RPLC', documentUniqueId, replaced.documentUniqueId),
        associationType: ASSOCIATION.replace,
        sourceObject: entryUUID,
        targetObject: replaced.entryUUID,
      });
    }
  }
  const manifestStudy: ManifestStudy = {
    studyInstanceUid: studyCtx.studyInstanceUid,
    accessionNumber,
    description: study.description,
    modality: study.modality,
    date: study.date,
    kos: kosFiles[kosFiles.length - 1],
    deprecatedKos: kosFiles.slice(0, -1),
    series,
  };
  return { study: manifestStudy, documentEntries, submissionSets, associations };
}

/**
 * Generates a community's seed into outDir (instances/…, kos/…, manifest.json) and returns the manifest.
 * Existing files of the same names are overwritten; nothing else in outDir is touched.
 */
export async function generateCommunitySeed(spec: SeedSpec, outDir: string): Promise<SeedManifest> {
  validateSeedSpec(spec);
  const institution = spec.institution ?? {
    name: `Community ${spec.community} Hospital`,
    oid: childUid(spec.uidRoot, 8),
  };
  const c: Community = {
    spec,
    utcOffset: spec.utcOffset ?? DEFAULT_UTC_OFFSET,
    institution,
    sourceId: spec.sourceId ?? childUid(spec.uidRoot, 9),
    author: {
      authorInstitution: [`${institution.name}^^^^^^^^^${institution.oid}`],
      authorPerson: spec.authorPerson ?? '^Suzuki^Ichiro^^^',
      authorRole: ['Radiologist'],
      authorSpecialty: ['Radiology'],
    },
  };
  await mkdir(outDir, { recursive: true });
  const writer = new FileWriter(outDir);
  const manifest: SeedManifest = {
    generator: { ...GENERATOR },
    spec: {
      community: spec.community,
      uidRoot: spec.uidRoot,
      patients: spec.patients.length,
      studies: 0,
      series: 0,
      instances: 0,
      instanceBytes: 0,
      kosDocuments: 0,
    },
    homeCommunityId: spec.homeCommunityId,
    repositoryUniqueId: spec.repositoryUniqueId,
    idsRepositoryUniqueId: spec.idsRepositoryUniqueId,
    patients: [],
    documentEntries: [],
    submissionSets: [],
    associations: [],
  };
  for (let pi = 1; pi <= spec.patients.length; pi++) {
    const p = spec.patients[pi - 1];
    const cx = parseCx(p.id);
    const patientCtx: PatientContext = {
      characterSet: p.characterSet ?? 'ISO_IR 6',
      name: p.name,
      patientId: cx.id,
      issuer: cx.namespaceId || cx.universalId,
      universalId: cx.universalId,
      birthDate: p.birthDate,
      sex: p.sex,
    };
    const patient: ManifestPatient = {
      id: p.id,
      sourcePatientId: p.localId ?? p.id,
      displayName: displayName(p),
      dicomName: personNameValue(p.name),
      characterSet: patientCtx.characterSet,
      birthDate: p.birthDate,
      sex: p.sex,
      ...(p.address ? { address: p.address } : {}),
      studies: [],
    };
    for (let si = 1; si <= p.studies.length; si++) {
      const out = await generateStudy(c, writer, p, patientCtx, pi, p.studies[si - 1], si);
      patient.studies.push(out.study);
      manifest.documentEntries.push(...out.documentEntries);
      manifest.submissionSets.push(...out.submissionSets);
      manifest.associations.push(...out.associations);
      const m = manifest.spec;
      m.studies += 1;
      m.series += out.study.series.length;
      for (const s of out.study.series) {
        m.instances += s.instances.length;
        for (const i of s.instances) m.instanceBytes += i.size;
      }
      m.kosDocuments += out.documentEntries.length;
    }
    manifest.patients.push(patient);
  }
  if (spec.patients.some((p) => p.consents?.length))
    manifest.consents = await generateConsents(spec, c, (p, d) => writer.write(p, d));
  await writer.write('manifest.json', Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8'));
  await writer.flush();
  return manifest;
}
