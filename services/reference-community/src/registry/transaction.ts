/**
 * ITI-18 Registry Stored Query served by the reference Document Registry. It runs on the same
 * engine as the gateways; having no sub-requests, it answers in `merge` from its metadata store.
 */
import {
  Action,
  decodeQuery,
  encodeQueryResult,
  queryAuditEvents,
  validateQuery,
  type AdhocQueryRequest,
  type QueryResult,
  type Transaction,
} from '@xcai/shared';
import { encodeAssociation, encodeDocumentEntry, encodeObjectRef, encodeSubmissionSet } from './encode';
import type { MetadataStore, RegistryObject } from './store';

export function registryStoredQuery(
  store: MetadataStore,
): Transaction<AdhocQueryRequest, never, QueryResult> {
  return {
    name: 'ITI-18',
    requestAction: Action.ITI18,
    responseAction: Action.ITI18Response,
    decode: decodeQuery,
    validate: validateQuery,
    plan: () => ({ calls: [], errors: [] }),
    async merge(req, _outcomes, errors) {
      if (errors.length || !req.query) return { status: 'Failure', errors, objects: [], subRequests: [] };
      const ans = store.run(req.query, req.params);
      const objects =
        req.returnType === 'ObjectRef'
          ? ans.objects.map((o) => encodeObjectRef(o.value.entryUUID))
          : ans.objects.flatMap(leafClass);
      return {
        status: ans.errors.length ? 'Failure' : 'Success',
        errors: ans.errors,
        objects,
        subRequests: [],
      };
    },
    encode: (res) => encodeQueryResult(res),
    audit: (req, res, ctx, delivery) => queryAuditEvents('ITI-18', req, res, ctx, delivery),
  };
}

function leafClass(o: RegistryObject): string[] {
  switch (o.kind) {
    case 'document':
      return [encodeDocumentEntry(o.value)];
    case 'submissionSet':
      return encodeSubmissionSet(o.value);
    case 'association':
      return [encodeAssociation(o.value)];
  }
}
