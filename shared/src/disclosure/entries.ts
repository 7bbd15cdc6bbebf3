/**
 * What the disclosure rules need to know about one registry object of a query answer: whose it is,
 * what class of document, which studies it stands for, what it links. Read from the object as the
 * registry sent it (the serialised, self-contained form the merge keeps, or the parsed element).
 */
import {
  classificationCodes,
  ClassificationScheme,
  externalIdentifier,
  Scheme,
  slotValues,
  type MetadataCode,
} from '../ebrim/registry-object';
import { NS } from '../xml/ns';
import { parseXml, type XmlElement } from '../xml/parse';

const REFERENCE_ID_LIST = 'urn:ihe:iti:xds:2013:referenceIdList';
const STUDY_UID_TYPE = 'urn:ihe:iti:xds:2016:studyInstanceUID';

export interface ObjectFacts {
  kind: 'document' | 'package' | 'association' | 'classification' | 'reference' | 'other';
  /** The object's id (entryUUID). */
  id?: string;
  /** DocumentEntry / SubmissionSet / Folder patientId (CX). */
  patientId?: string;
  uniqueId?: string;
  classCode?: MetadataCode;
  typeCode?: MetadataCode;
  confidentialityCodes: MetadataCode[];
  eventCodes: MetadataCode[];
  /** DTM, UTC. */
  serviceStartTime?: string;
  serviceStopTime?: string;
  /** Study Instance UIDs of the referenceIdList (XDS-I.b KOS manifests). */
  studyUids: string[];
  /** Association: the objects it links; Classification: the object it classifies. */
  sourceObject?: string;
  targetObject?: string;
}

/** Facts of one registry object (an element, or its serialised form). */
export function objectFacts(obj: XmlElement | string): ObjectFacts {
  const el = typeof obj === 'string' ? parseXml(obj).root : obj;
  const facts: ObjectFacts = {
    kind: 'other',
    id: el.attr('id'),
    confidentialityCodes: [],
    eventCodes: [],
    studyUids: [],
  };
  if (el.ns !== NS.rim) return facts;
  switch (el.local) {
    case 'ExtrinsicObject': {
      facts.kind = 'document';
      facts.patientId = externalIdentifier(el, Scheme.documentEntryPatientId);
      facts.uniqueId = externalIdentifier(el, Scheme.documentEntryUniqueId);
      facts.classCode = classificationCodes(el, ClassificationScheme.classCode)[0];
      facts.typeCode = classificationCodes(el, ClassificationScheme.typeCode)[0];
      facts.confidentialityCodes = classificationCodes(el, ClassificationScheme.confidentialityCode);
      facts.eventCodes = classificationCodes(el, ClassificationScheme.eventCodeList);
      facts.serviceStartTime = slotValues(el, 'serviceStartTime')[0];
      facts.serviceStopTime = slotValues(el, 'serviceStopTime')[0];
      for (const cxi of slotValues(el, REFERENCE_ID_LIST)) {
        const comps = cxi.split('^');
        if (comps[4] === STUDY_UID_TYPE && comps[0]) facts.studyUids.push(comps[0]);
      }
      break;
    }
    case 'RegistryPackage':
      facts.kind = 'package';
      facts.patientId =
        externalIdentifier(el, Scheme.submissionSetPatientId) ??
        externalIdentifier(el, Scheme.folderPatientId);
      break;
    case 'Association':
      facts.kind = 'association';
      facts.sourceObject = el.attr('sourceObject');
      facts.targetObject = el.attr('targetObject');
      break;
    case 'Classification':
      // A top-level Classification marks a RegistryPackage as SubmissionSet or Folder.
      facts.kind = 'classification';
      facts.sourceObject = el.attr('classifiedObject');
      break;
    case 'ObjectRef':
      facts.kind = 'reference';
      break;
  }
  return facts;
}
