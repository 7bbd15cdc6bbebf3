import { ErrorCode } from './error-codes';
import { registryError, type RegistryError } from './status';

/** Stored query ids (ITI TF-2 3.18.4.1.2.3.7). */
export const StoredQuery = {
  FindDocuments: 'urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d',
  FindSubmissionSets: 'urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9',
  FindFolders: 'urn:uuid:958f3006-baad-4929-a4de-ff1114824431',
  GetAll: 'urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3',
  GetDocuments: 'urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4',
  GetFolders: 'urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4',
  GetAssociations: 'urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155',
  GetDocumentsAndAssociations: 'urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a',
  GetSubmissionSets: 'urn:uuid:51224314-5390-4169-9b91-b1980040715a',
  GetSubmissionSetAndContents: 'urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83',
  GetFolderAndContents: 'urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7',
  GetFoldersForDocument: 'urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578',
  GetRelatedDocuments: 'urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6',
  FindDocumentsByReferenceId: 'urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492',
} as const;

export type StoredQueryName = keyof typeof StoredQuery;

interface QueryRule {
  /** The parameter carrying the patient id, for patient-based queries. */
  patientParam?: string;
  /** Every one of these is required. */
  required: string[];
  /** Exactly one of these (when given). */
  oneOf?: string[];
  /** Parameters that take a single value. */
  single: string[];
}

const RULES: Record<StoredQueryName, QueryRule> = {
  FindDocuments: {
    patientParam: '$XDSDocumentEntryPatientId',
    required: ['$XDSDocumentEntryPatientId', '$XDSDocumentEntryStatus'],
    single: [
      '$XDSDocumentEntryPatientId',
      '$XDSDocumentEntryCreationTimeFrom',
      '$XDSDocumentEntryCreationTimeTo',
      '$XDSDocumentEntryServiceStartTimeFrom',
      '$XDSDocumentEntryServiceStartTimeTo',
      '$XDSDocumentEntryServiceStopTimeFrom',
      '$XDSDocumentEntryServiceStopTimeTo',
    ],
  },
  FindDocumentsByReferenceId: {
    patientParam: '$XDSDocumentEntryPatientId',
    required: ['$XDSDocumentEntryPatientId', '$XDSDocumentEntryStatus', '$XDSDocumentEntryReferenceIdList'],
    single: ['$XDSDocumentEntryPatientId'],
  },
  FindSubmissionSets: {
    patientParam: '$XDSSubmissionSetPatientId',
    required: ['$XDSSubmissionSetPatientId', '$XDSSubmissionSetStatus'],
    single: [
      '$XDSSubmissionSetPatientId',
      '$XDSSubmissionSetSubmissionTimeFrom',
      '$XDSSubmissionSetSubmissionTimeTo',
    ],
  },
  FindFolders: {
    patientParam: '$XDSFolderPatientId',
    required: ['$XDSFolderPatientId', '$XDSFolderStatus'],
    single: ['$XDSFolderPatientId', '$XDSFolderLastUpdateTimeFrom', '$XDSFolderLastUpdateTimeTo'],
  },
  GetAll: {
    patientParam: '$patientId',
    required: ['$patientId', '$XDSDocumentEntryStatus', '$XDSSubmissionSetStatus', '$XDSFolderStatus'],
    single: ['$patientId'],
  },
  GetDocuments: {
    required: [],
    oneOf: ['$XDSDocumentEntryEntryUUID', '$XDSDocumentEntryUniqueId'],
    single: [],
  },
  GetDocumentsAndAssociations: {
    required: [],
    oneOf: ['$XDSDocumentEntryEntryUUID', '$XDSDocumentEntryUniqueId'],
    single: [],
  },
  GetFolders: { required: [], oneOf: ['$XDSFolderEntryUUID', '$XDSFolderUniqueId'], single: [] },
  GetAssociations: { required: ['$uuid'], single: [] },
  GetSubmissionSets: { required: ['$uuid'], single: [] },
  GetSubmissionSetAndContents: {
    required: [],
    oneOf: ['$XDSSubmissionSetEntryUUID', '$XDSSubmissionSetUniqueId'],
    single: ['$XDSSubmissionSetEntryUUID', '$XDSSubmissionSetUniqueId'],
  },
  GetFolderAndContents: {
    required: [],
    oneOf: ['$XDSFolderEntryUUID', '$XDSFolderUniqueId'],
    single: ['$XDSFolderEntryUUID', '$XDSFolderUniqueId'],
  },
  GetFoldersForDocument: {
    required: [],
    oneOf: ['$XDSDocumentEntryEntryUUID', '$XDSDocumentEntryUniqueId'],
    single: ['$XDSDocumentEntryEntryUUID', '$XDSDocumentEntryUniqueId'],
  },
  GetRelatedDocuments: {
    required: ['$AssociationTypes'],
    oneOf: ['$XDSDocumentEntryEntryUUID', '$XDSDocumentEntryUniqueId'],
    single: ['$XDSDocumentEntryEntryUUID', '$XDSDocumentEntryUniqueId'],
  },
};

const NAME_BY_ID = new Map<string, StoredQueryName>(
  Object.entries(StoredQuery).map(([k, v]) => [v.toLowerCase(), k as StoredQueryName]),
);

export function storedQueryName(id: string): StoredQueryName | undefined {
  return NAME_BY_ID.get(id.trim().toLowerCase());
}

/**
 * Parameter values: slot name → one entry per Slot (AND) → the values of that Slot (OR), each
 * already unquoted and with parenthesised lists flattened (ITI TF-2 3.18.4.1.2.3.5).
 */
export type QueryParams = Map<string, string[][]>;

export class ParamSyntaxError extends Error {}

/** Parses one `Value`: `'abc'`, `('a','b')`, `(1,2)` or a bare number. `''` inside quotes is a quote. */
export function parseParamValue(raw: string): string[] {
  const v = raw.trim();
  if (v.startsWith('(')) {
    if (!v.endsWith(')')) throw new ParamSyntaxError(`unbalanced parenthesis in ${truncate(v)}`);
    return splitList(v.slice(1, -1));
  }
  return [parseScalar(v)];
}

function splitList(inner: string): string[] {
  const out: string[] = [];
  let i = 0;
  const s = inner;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i])) i++;
    if (i >= s.length) break;
    let item: string;
    if (s[i] === "'") {
      let j = i + 1;
      let buf = '';
      while (true) {
        const q = s.indexOf("'", j);
        if (q < 0) throw new ParamSyntaxError(`unterminated quote in (${truncate(inner)})`);
        buf += s.slice(j, q);
        if (s[q + 1] === "'") {
          buf += "'";
          j = q + 2;
        } else {
          j = q + 1;
          break;
        }
      }
      item = buf;
      i = j;
    } else {
      const c = s.indexOf(',', i);
      const end = c < 0 ? s.length : c;
      item = s.slice(i, end).trim();
      if (item.includes("'")) throw new ParamSyntaxError(`stray quote in (${truncate(inner)})`);
      i = end;
    }
    out.push(item);
    while (i < s.length && /\s/.test(s[i])) i++;
    if (i < s.length) {
      if (s[i] !== ',') throw new ParamSyntaxError(`expected ',' in (${truncate(inner)})`);
      i++;
    }
  }
  return out;
}

function parseScalar(v: string): string {
  if (v.startsWith("'")) {
    if (v.length < 2 || !v.endsWith("'")) throw new ParamSyntaxError(`unterminated quote in ${truncate(v)}`);
    const body = v.slice(1, -1);
    if (/(^|[^'])'([^']|$)/.test(body.replace(/''/g, '')))
      throw new ParamSyntaxError(`stray quote in ${truncate(v)}`);
    return body.replace(/''/g, "'");
  }
  return v;
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** Quotes a value for a stored-query Slot. */
export function quoteParam(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

/** All values of a parameter, flattened across slots. */
export function paramValues(params: QueryParams, name: string): string[] {
  return (params.get(name) ?? []).flat();
}

export function firstParam(params: QueryParams, name: string): string | undefined {
  return paramValues(params, name)[0];
}

/** Checks required / one-of / single-valued parameters; returns RegistryErrors (empty when fine). */
export function validateStoredQuery(name: StoredQueryName, params: QueryParams): RegistryError[] {
  const rule = RULES[name];
  const errors: RegistryError[] = [];
  for (const p of rule.required) {
    if (paramValues(params, p).length === 0) {
      errors.push(
        registryError(ErrorCode.StoredQueryMissingParam, `${name}: required parameter ${p} is missing`, p),
      );
    }
  }
  if (rule.oneOf) {
    const given = rule.oneOf.filter((p) => paramValues(params, p).length > 0);
    if (given.length === 0) {
      errors.push(
        registryError(
          ErrorCode.StoredQueryMissingParam,
          `${name}: one of ${rule.oneOf.join(', ')} is required`,
          rule.oneOf[0],
        ),
      );
    } else if (given.length > 1) {
      errors.push(
        registryError(
          ErrorCode.StoredQueryParamNumber,
          `${name}: only one of ${rule.oneOf.join(', ')} may be given`,
          given[1],
        ),
      );
    }
  }
  for (const p of rule.single) {
    if (paramValues(params, p).length > 1) {
      errors.push(
        registryError(ErrorCode.StoredQueryParamNumber, `${name}: parameter ${p} takes a single value`, p),
      );
    }
  }
  return errors;
}

/** The patient id a patient-based query names, if any. */
export function queryPatientId(name: StoredQueryName, params: QueryParams): string | undefined {
  const p = RULES[name].patientParam;
  return p ? firstParam(params, p) : undefined;
}

/** The parameter that carries the patient id of a patient-based query. */
export function patientParamOf(name: StoredQueryName): string | undefined {
  return RULES[name].patientParam;
}

export function isPatientQuery(name: StoredQueryName): boolean {
  return RULES[name].patientParam !== undefined;
}
