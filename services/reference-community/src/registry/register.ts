/**
 * ITI-42 Register Document Set-b served by the reference Document Registry (ITI TF-2 3.42): the
 * metadata of one SubmissionSet is registered whole or not at all. No sub-requests: it answers in
 * `merge` from its metadata store.
 */
import {
  Action,
  decodeSubmitObjectsRequest,
  encodeRegistryResponse,
  ErrorCode,
  registryError,
  receivedSubmissionAudit,
  SubmissionError,
  type RegistryError,
  type Status,
  type Submission,
  type Transaction,
} from '@xcai/shared';
import type { MetadataStore } from './store';

type Decoded = { submission?: Submission; invalid?: string };
type Registered = { status: Status; errors: RegistryError[] };

export function registerDocumentSet(
  store: MetadataStore,
  homeCommunityId: string,
): Transaction<Decoded, never, Registered> {
  return {
    name: 'ITI-42',
    requestAction: Action.ITI42,
    responseAction: Action.ITI42Response,
    decode(ctx) {
      try {
        return { submission: decodeSubmitObjectsRequest(ctx.envelope.payload) };
      } catch (e) {
        if (e instanceof SubmissionError) return { invalid: e.message };
        throw e;
      }
    },
    validate: (req) => (req.invalid ? [registryError(ErrorCode.RegistryMetadataError, req.invalid)] : []),
    plan: () => ({ calls: [], errors: [] }),
    async merge(req, _o, invalid) {
      const errors =
        invalid.length || !req.submission ? invalid : store.register(req.submission, homeCommunityId);
      return { status: errors.length ? 'Failure' : 'Success', errors };
    },
    encode: (res) => ({ kind: 'xml', payload: encodeRegistryResponse(res.status, res.errors) }),
    audit: (req, res, ctx, delivery) => [
      receivedSubmissionAudit('ITI-42', req.submission, res, ctx, delivery),
    ],
  };
}
