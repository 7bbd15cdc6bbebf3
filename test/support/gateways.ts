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
import { localOf, type CommunityProcess } from './federation';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';
import type { DocumentRequest } from '@xcai/shared';

/** A community calling a responding gateway: its certificate's name and CA, and its own settings. */
export type Initiator = { homeCommunityId: string; name: string; certName: string; ca: string } & Record<
  string,
  unknown
>;

/** A directory (as JSON) for a responding gateway in front of `ref`, accepting `initiators`. */
export function rgDirectoryJson(
  ref: CommunityProcess,
  initiators: Initiator | Initiator[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    homeCommunityId: ref.homeCommunityId,
    name: 'B',
    local: localOf(ref),
    communities: [initiators].flat().map(({ certName, ca, ...rest }) => ({
      ...rest,
      identity: { trustAnchors: [ca], names: [certName] },
    })),
    ...extra,
  };
}

/** A directory (as JSON) for community A's initiating gateway calling one responding gateway. */
export function igDirectoryJson(
  rg: { homeCommunityId: string; url: string; certName: string; ca: string },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.101',
    name: 'A',
    communities: [
      {
        homeCommunityId: rg.homeCommunityId,
        name: 'B',
        endpoints: { iti38: `${rg.url}/iti38`, iti39: `${rg.url}/iti39`, rad75: `${rg.url}/rad75` },
        identity: { trustAnchors: [rg.ca], names: [rg.certName] },
      },
    ],
    ...extra,
  };
}

/** ITI-39 requests for a patient's approved KOS manifests in a seeded community. */
export function kosRequests(m: SeedManifest, patient: string): DocumentRequest[] {
  return m.documentEntries
    .filter((d) => d.patientId === patient && d.availabilityStatus.endsWith(':Approved'))
    .map((d) => ({
      homeCommunityId: m.homeCommunityId,
      repositoryUniqueId: d.repositoryUniqueId,
      documentUniqueId: d.uniqueId,
    }));
}

/**
 * A retrieve answer's errors with the requested document ids blanked: what a withheld document and
 * an unknown one must have in common (the errors are located at the responding gateway's home, the
 * document named in codeContext).
 */
export function errorsWithoutIds(
  errors: { errorCode: string; codeContext: string; location?: string; severity?: string }[],
  asked: Pick<DocumentRequest, 'documentUniqueId'>[],
) {
  return errors.map((e) => ({
    ...e,
    codeContext: asked.reduce((t, d) => t.split(d.documentUniqueId).join('ID'), e.codeContext),
  }));
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
