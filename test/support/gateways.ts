/**
 * Gateways as processes for the end-to-end tests of what leaves a community (consent, break-glass,
 * document classes, audit): directories for a responding gateway in front of a reference community,
 * the TLS environment from a test PKI, and the records of a gateway's local audit spool.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAuditRecords, parseAuditRecord, type AuditRecordView } from '@xcai/shared/src/audit/report';
import type { TestPki } from './certs';
import type { CommunityProcess } from './federation';

/** A directory (as JSON) for a responding gateway in front of `ref`, accepting `initiator`. */
export function rgDirectoryJson(
  ref: CommunityProcess,
  initiator: { homeCommunityId: string; name: string; certName: string; ca: string } & Record<
    string,
    unknown
  >,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const { certName, ca, ...rest } = initiator;
  return {
    homeCommunityId: ref.homeCommunityId,
    name: 'B',
    local: {
      registry: { url: ref.registry },
      repositories: [{ repositoryUniqueId: ref.repositoryUniqueId, url: ref.repository }],
      imagingDocumentSources: [{ repositoryUniqueId: ref.idsRepositoryUniqueId, url: ref.ids }],
    },
    communities: [{ ...rest, identity: { trustAnchors: [ca], names: [certName] } }],
    ...extra,
  };
}

/** The environment of a gateway presenting certificate `name`, auditing into a fresh spool directory. */
export function gatewayEnv(
  pki: TestPki,
  name: string,
  clientAuth: 'required' | 'optional',
  extra: Record<string, string> = {},
): { env: Record<string, string>; spool: string } {
  const spool = join(mkdtempSync(join(tmpdir(), 'xcai-spool-')), 'audit');
  return {
    spool,
    env: {
      XCAI_TLS_CERT: pki.cert(name),
      XCAI_TLS_KEY: pki.key(name),
      XCAI_TLS_CA: pki.ca,
      XCAI_TLS_CLIENT_AUTH: clientAuth,
      XCAI_AUDIT_SPOOL_DIR: spool,
      ...extra,
    },
  };
}

/** The records of a spool, parsed; waits (up to 10 s) until `ready` holds for them. */
export async function spoolRecords(
  spool: string,
  ready: (views: AuditRecordView[]) => boolean = () => true,
): Promise<AuditRecordView[]> {
  let views: AuditRecordView[] = [];
  for (let i = 0; i < 200; i++) {
    try {
      views = loadAuditRecords([spool])
        .map((r) => parseAuditRecord(r.id, r.xml))
        .filter((v): v is AuditRecordView => v !== undefined);
    } catch {
      views = [];
    }
    if (ready(views)) return views;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the audit records in ${spool} never became as expected (${views.length} records)`);
}
