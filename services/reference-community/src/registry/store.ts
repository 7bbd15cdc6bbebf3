/**
 * The reference registry's metadata: DocumentEntries, SubmissionSets and Associations from the
 * seed manifests, and the stored queries over them (ITI TF-2 3.18.4.1.2.3.7).
 */
import {
  AssociationType,
  ErrorCode,
  firstParam,
  paramValues,
  registryError,
  type QueryParams,
  type RegistryError,
  type StoredQueryName,
  type Submission,
  APPROVED_STATUS,
} from '@xcai/shared';
import type { SeedManifest, XdsAssociation, XdsDocumentEntry, XdsSubmissionSet } from '../seed/types';

export type RegistryObject =
  | { kind: 'document'; value: XdsDocumentEntry }
  | { kind: 'submissionSet'; value: XdsSubmissionSet }
  | { kind: 'association'; value: XdsAssociation };

export interface QueryAnswer {
  objects: RegistryObject[];
  errors: RegistryError[];
}

export class MetadataStore {
  readonly documents = new Map<string, XdsDocumentEntry>();
  readonly documentsByUniqueId = new Map<string, XdsDocumentEntry>();
  readonly submissionSets = new Map<string, XdsSubmissionSet>();
  readonly associations: XdsAssociation[] = [];
  readonly patients = new Set<string>();

  constructor(manifests: SeedManifest[]) {
    for (const m of manifests) {
      for (const p of m.patients) this.patients.add(p.id);
      // The KOS manifests and, where seeded, the consent documents (seed/consent.ts).
      for (const part of [m, ...(m.consents ? [m.consents] : [])]) {
        for (const d of part.documentEntries) {
          this.documents.set(d.entryUUID, d);
          this.documentsByUniqueId.set(d.uniqueId, d);
        }
        for (const s of part.submissionSets) this.submissionSets.set(s.entryUUID, s);
        this.associations.push(...part.associations);
      }
    }
  }

  /**
   * Registers a submission (ITI-42): all or nothing. The reference community has no Patient
   * Identity Feed, so a submission's patient becomes known here; every DocumentEntry must name the
   * SubmissionSet's patient and carry the repository's hash, size and repositoryUniqueId; a replaced
   * entry (RPLC) must be Approved and is Deprecated.
   */
  register(sub: Submission, homeCommunityId: string): RegistryError[] {
    const errors: RegistryError[] = [];
    const pid = sub.submissionSet.patientId;
    const ids = new Set([sub.submissionSet.entryUUID, ...sub.documents.map((d) => d.entryUUID)]);
    for (const id of ids)
      if (!/^urn:uuid:[0-9a-f-]{36}$/i.test(id) || this.documents.has(id) || this.submissionSets.has(id))
        errors.push(
          registryError(ErrorCode.RegistryMetadataError, `entryUUID ${id} is not a new urn:uuid`, id),
        );
    for (const d of sub.documents) {
      if (d.patientId !== pid)
        errors.push(
          registryError(
            ErrorCode.PatientIdDoesNotMatch,
            `DocumentEntry ${d.uniqueId} names another patient than its SubmissionSet`,
            d.uniqueId,
          ),
        );
      if (this.documentsByUniqueId.has(d.uniqueId))
        errors.push(
          registryError(
            ErrorCode.DuplicateUniqueIdInRegistry,
            `document ${d.uniqueId} is already registered`,
            d.uniqueId,
          ),
        );
      if (!d.hash || d.size === undefined || !d.repositoryUniqueId)
        errors.push(
          registryError(
            ErrorCode.RegistryMetadataError,
            `DocumentEntry ${d.uniqueId} lacks hash, size or repositoryUniqueId`,
            d.uniqueId,
          ),
        );
      if (
        !sub.associations.some(
          (a) =>
            a.associationType === AssociationType.hasMember &&
            a.sourceObject === sub.submissionSet.entryUUID &&
            a.targetObject === d.entryUUID,
        )
      )
        errors.push(
          registryError(
            ErrorCode.RegistryMetadataError,
            `DocumentEntry ${d.uniqueId} is not a member of the SubmissionSet`,
            d.uniqueId,
          ),
        );
    }
    const replaced: XdsDocumentEntry[] = [];
    for (const a of sub.associations) {
      if (a.associationType === AssociationType.rplc) {
        const old = this.documents.get(a.targetObject);
        if (!ids.has(a.sourceObject) || !old || !isApproved(old.availabilityStatus) || old.patientId !== pid)
          errors.push(
            registryError(
              ErrorCode.UnresolvedReferenceException,
              `RPLC target ${a.targetObject} is not an Approved DocumentEntry of this patient`,
              a.targetObject,
            ),
          );
        else replaced.push(old);
      } else if (
        a.associationType !== AssociationType.hasMember ||
        !ids.has(a.sourceObject) ||
        !ids.has(a.targetObject)
      ) {
        errors.push(
          registryError(
            ErrorCode.RegistryMetadataError,
            `association ${a.entryUUID} is not accepted here`,
            a.entryUUID,
          ),
        );
      }
    }
    if (errors.length) return errors;
    this.patients.add(pid);
    for (const old of replaced)
      old.availabilityStatus = 'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated';
    for (const d of sub.documents) {
      const entry = {
        ...d,
        homeCommunityId,
        availabilityStatus: APPROVED_STATUS,
        serviceStartTime: d.serviceStartTime ?? '',
        path: '',
      } as XdsDocumentEntry;
      this.documents.set(entry.entryUUID, entry);
      this.documentsByUniqueId.set(entry.uniqueId, entry);
    }
    this.submissionSets.set(sub.submissionSet.entryUUID, {
      ...sub.submissionSet,
      homeCommunityId,
      availabilityStatus: APPROVED_STATUS,
    });
    this.associations.push(...sub.associations);
    return [];
  }

  run(query: StoredQueryName, p: QueryParams): QueryAnswer {
    switch (query) {
      case 'FindDocuments':
        return this.patientQuery(firstParam(p, '$XDSDocumentEntryPatientId'), () => this.findDocuments(p));
      case 'FindSubmissionSets':
        return this.patientQuery(firstParam(p, '$XDSSubmissionSetPatientId'), () =>
          [...this.submissionSets.values()]
            .filter((s) => s.patientId === firstParam(p, '$XDSSubmissionSetPatientId'))
            .filter((s) => paramValues(p, '$XDSSubmissionSetStatus').includes(s.availabilityStatus))
            .map((value) => ({ kind: 'submissionSet' as const, value })),
        );
      case 'GetAll':
        return this.patientQuery(firstParam(p, '$patientId'), () => {
          const pid = firstParam(p, '$patientId');
          const docs = [...this.documents.values()].filter(
            (d) =>
              d.patientId === pid && paramValues(p, '$XDSDocumentEntryStatus').includes(d.availabilityStatus),
          );
          const sets = [...this.submissionSets.values()].filter(
            (s) =>
              s.patientId === pid && paramValues(p, '$XDSSubmissionSetStatus').includes(s.availabilityStatus),
          );
          const ids = new Set([...docs.map((d) => d.entryUUID), ...sets.map((s) => s.entryUUID)]);
          return [
            ...docs.map((value) => ({ kind: 'document' as const, value })),
            ...sets.map((value) => ({ kind: 'submissionSet' as const, value })),
            ...this.associations
              .filter((a) => ids.has(a.sourceObject) && ids.has(a.targetObject))
              .map((value) => ({ kind: 'association' as const, value })),
          ];
        });
      case 'FindFolders':
        return this.patientQuery(firstParam(p, '$XDSFolderPatientId'), () => []);
      case 'GetDocuments':
        return { objects: this.documentsById(p).map((value) => ({ kind: 'document', value })), errors: [] };
      case 'GetDocumentsAndAssociations': {
        const docs = this.documentsById(p);
        const ids = new Set(docs.map((d) => d.entryUUID));
        return {
          objects: [
            ...docs.map((value) => ({ kind: 'document' as const, value })),
            ...this.associations
              .filter((a) => ids.has(a.sourceObject) || ids.has(a.targetObject))
              .map((value) => ({ kind: 'association' as const, value })),
          ],
          errors: [],
        };
      }
      case 'GetAssociations': {
        const ids = new Set(paramValues(p, '$uuid'));
        return {
          objects: this.associations
            .filter((a) => ids.has(a.sourceObject) || ids.has(a.targetObject))
            .map((value) => ({ kind: 'association', value })),
          errors: [],
        };
      }
      case 'GetSubmissionSets': {
        const ids = new Set(paramValues(p, '$uuid'));
        const setIds = new Set(
          this.associations
            .filter((a) => a.associationType.endsWith(':HasMember') && ids.has(a.targetObject))
            .map((a) => a.sourceObject),
        );
        const sets = [...setIds]
          .map((id) => this.submissionSets.get(id))
          .filter((s): s is XdsSubmissionSet => !!s);
        return {
          objects: [
            ...sets.map((value) => ({ kind: 'submissionSet' as const, value })),
            ...this.associations
              .filter((a) => setIds.has(a.sourceObject) && ids.has(a.targetObject))
              .map((value) => ({ kind: 'association' as const, value })),
          ],
          errors: [],
        };
      }
      case 'GetSubmissionSetAndContents': {
        const id = firstParam(p, '$XDSSubmissionSetEntryUUID');
        const uid = firstParam(p, '$XDSSubmissionSetUniqueId');
        const set = [...this.submissionSets.values()].find((s) => s.entryUUID === id || s.uniqueId === uid);
        if (!set) return { objects: [], errors: [] };
        const members = this.associations.filter((a) => a.sourceObject === set.entryUUID);
        const docs = members
          .map((a) => this.documents.get(a.targetObject))
          .filter((d): d is XdsDocumentEntry => !!d);
        return {
          objects: [
            { kind: 'submissionSet', value: set },
            ...docs.map((value) => ({ kind: 'document' as const, value })),
            ...members.map((value) => ({ kind: 'association' as const, value })),
          ],
          errors: [],
        };
      }
      default:
        // Folders are not kept by the reference registry; related-document queries find nothing.
        return { objects: [], errors: [] };
    }
  }

  private patientQuery(patientId: string | undefined, run: () => RegistryObject[]): QueryAnswer {
    if (!patientId || !this.patients.has(patientId)) {
      return {
        objects: [],
        errors: [registryError(ErrorCode.UnknownPatientId, 'patient not known to this registry', patientId)],
      };
    }
    return { objects: run(), errors: [] };
  }

  private documentsById(p: QueryParams): XdsDocumentEntry[] {
    const byUuid = paramValues(p, '$XDSDocumentEntryEntryUUID').map((id) => this.documents.get(id));
    const byUid = paramValues(p, '$XDSDocumentEntryUniqueId').map((id) => this.documentsByUniqueId.get(id));
    return [...byUuid, ...byUid].filter((d): d is XdsDocumentEntry => !!d);
  }

  private findDocuments(p: QueryParams): RegistryObject[] {
    const pid = firstParam(p, '$XDSDocumentEntryPatientId');
    const statuses = paramValues(p, '$XDSDocumentEntryStatus');
    return [...this.documents.values()]
      .filter((d) => d.patientId === pid)
      .filter((d) => statuses.includes(d.availabilityStatus))
      .filter((d) => codesMatch(p, '$XDSDocumentEntryClassCode', [d.classCode]))
      .filter((d) => codesMatch(p, '$XDSDocumentEntryTypeCode', [d.typeCode]))
      .filter((d) => codesMatch(p, '$XDSDocumentEntryPracticeSettingCode', [d.practiceSettingCode]))
      .filter((d) =>
        codesMatch(p, '$XDSDocumentEntryHealthcareFacilityTypeCode', [d.healthcareFacilityTypeCode]),
      )
      .filter((d) => codesMatch(p, '$XDSDocumentEntryEventCodeList', d.eventCodeList))
      .filter((d) => codesMatch(p, '$XDSDocumentEntryConfidentialityCode', d.confidentialityCode))
      .filter((d) => codesMatch(p, '$XDSDocumentEntryFormatCode', [d.formatCode]))
      .filter((d) =>
        timeInRange(
          d.creationTime,
          firstParam(p, '$XDSDocumentEntryCreationTimeFrom'),
          firstParam(p, '$XDSDocumentEntryCreationTimeTo'),
        ),
      )
      .filter((d) =>
        timeInRange(
          d.serviceStartTime,
          firstParam(p, '$XDSDocumentEntryServiceStartTimeFrom'),
          firstParam(p, '$XDSDocumentEntryServiceStartTimeTo'),
        ),
      )
      .filter((d) => {
        const types = paramValues(p, '$XDSDocumentEntryType');
        return types.length === 0 || types.includes(d.objectType);
      })
      .map((value) => ({ kind: 'document', value }));
  }
}

export function isApproved(status: string): boolean {
  return status === APPROVED_STATUS;
}

/**
 * Code parameters (`code^^scheme`): values within one Slot are OR-ed, several Slots AND-ed
 * (ITI TF-2 3.18.4.1.2.3.5). The scheme is optional in a value.
 */
function codesMatch(p: QueryParams, name: string, codes: { code: string; scheme: string }[]): boolean {
  const slots = p.get(name);
  if (!slots) return true;
  return slots.every((values) =>
    values.some((v) => {
      const [code, , scheme] = v.split('^');
      return codes.some((c) => c.code === code && (!scheme || c.scheme === scheme));
    }),
  );
}

/** DTM ranges: From inclusive, To exclusive, compared at the precision given. */
function timeInRange(value: string, from?: string, to?: string): boolean {
  if (from && value.slice(0, from.length) < from) return false;
  if (to && value.slice(0, to.length) >= to) return false;
  return true;
}
