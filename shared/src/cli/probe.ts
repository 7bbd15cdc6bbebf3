/**
 * `xcai probe`: sends one ITI-38 Cross Gateway Query to a community's Responding Gateway through the
 * same Outbound client the gateway uses (directory allow-list, TLS settings, verification always on)
 * and reports latency, HTTP status, the query status and error codes, and — over TLS — the peer
 * certificate.
 *
 * Without --patient the query is harmless: GetDocuments for an entryUUID that matches nothing, with
 * home = the community, so no patient is named in the request or in the peer's audit trail.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { loadDirectory } from '../directory/load';
import { mapBounded } from '../util/bounded';
import type { Directory, Endpoint } from '../directory/types';
import {
  decodeAdhocQueryResponse,
  encodeAdhocQueryRequest,
  encodeFindDocumentsRequest,
} from '../ebrim/query';
import type { RegistryError, Status } from '../ebrim/status';
import { StoredQuery } from '../ebrim/stored-query';
import { CallFailure, DEFAULT_CIPHERS, Outbound, type TlsClientOptions } from '../outbound/client';
import { readSoapMessage } from '../mtom/read';
import { faultReason } from '../pipeline/dispatch';
import { decodeEnvelope, encodeEnvelope } from '../soap/envelope';
import { newMessageId } from '../soap/ids';
import { Action } from '../transactions/actions';
import { NS } from '../xml/ns';

/** An entryUUID no registry holds (the probe's harmless query). */
export const PROBE_ENTRY_UUID = 'urn:uuid:00000000-0000-4000-8000-000000000000';

export interface ProbeOptions {
  directoryFile: string;
  /** homeCommunityId of the community to probe. */
  community: string;
  /** Patient id (HL7 CX) for a FindDocuments; default: the harmless GetDocuments. */
  patient?: string;
  /** PEM files: our client certificate and key, and the trust anchors for the peer. */
  tls?: { cert?: string; key?: string; ca?: string[] };
  timeoutMs?: number;
}

export interface PeerCertificateInfo {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
  serialNumber: string;
  subjectAltName?: string;
  protocol?: string;
  cipher?: string;
}

export interface ProbeResult {
  ok: boolean;
  community: { homeCommunityId: string; name: string };
  url?: string;
  query: 'FindDocuments' | 'GetDocuments';
  tls?: { certificate?: PeerCertificateInfo; error?: string };
  latencyMs?: number;
  httpStatus?: number;
  status?: Status;
  objects?: number;
  errors?: RegistryError[];
  fault?: string;
  failure?: { kind: string; message: string };
}

export async function probeCommunity(o: ProbeOptions): Promise<ProbeResult> {
  return probeEntry(loadDirectory(o.directoryFile), o);
}

export interface ProbeAllOptions extends Omit<ProbeOptions, 'community'> {
  /** Probes in flight at once (default 16). */
  concurrency?: number;
  /** Called as each probe completes (in completion order). */
  onResult?(r: ProbeResult): void;
}

export const PROBE_ALL_CONCURRENCY = 16;

/**
 * Probes every directory entry with an iti38 endpoint, at most `concurrency` at a time (a national
 * directory has hundreds: all at once would be a burst at our own egress and their gateways).
 * Results come back in directory order.
 */
export async function probeAll(o: ProbeAllOptions): Promise<ProbeResult[]> {
  const dir = loadDirectory(o.directoryFile);
  const limit = Math.max(1, o.concurrency ?? PROBE_ALL_CONCURRENCY);
  const targets = dir.communities.filter((c) => c.endpoints.iti38);
  return mapBounded(
    targets,
    limit,
    (c) => probeEntry(dir, { ...o, community: c.homeCommunityId }),
    o.onResult,
  );
}

async function probeEntry(dir: Directory, o: ProbeOptions): Promise<ProbeResult> {
  const query: ProbeResult['query'] = o.patient ? 'FindDocuments' : 'GetDocuments';
  const community = dir.communities.find((c) => c.homeCommunityId === o.community);
  const result: ProbeResult = {
    ok: false,
    community: { homeCommunityId: o.community, name: community?.name ?? '?' },
    query,
  };
  if (!community) {
    result.failure = { kind: 'unknown-community', message: `${o.community} is not in ${o.directoryFile}` };
    return result;
  }
  const ep = community.endpoints.iti38;
  if (!ep) {
    result.failure = {
      kind: 'no-endpoint',
      message: `${community.name} has no iti38 endpoint in the directory`,
    };
    return result;
  }
  result.url = ep.url;
  const timeoutMs = o.timeoutMs ?? ep.timeoutMs;
  const anchors = o.tls?.ca?.length ? o.tls.ca : community.identity?.trustAnchors;
  const tls: TlsClientOptions = {
    cert: o.tls?.cert ? readFileSync(o.tls.cert) : undefined,
    key: o.tls?.key ? readFileSync(o.tls.key) : undefined,
    ca: anchors?.length ? anchors.map((f) => readFileSync(f)) : undefined,
  };
  if (ep.url.startsWith('https:')) result.tls = await peerCertificate(ep.url, tls, timeoutMs);

  const body = o.patient
    ? encodeFindDocumentsRequest(o.patient, { returnType: 'ObjectRef' })
    : encodeAdhocQueryRequest({
        queryId: StoredQuery.GetDocuments,
        returnType: 'ObjectRef',
        home: community.homeCommunityId,
        params: { $XDSDocumentEntryEntryUUID: `('${PROBE_ENTRY_UUID}')` },
      });
  const messageId = newMessageId();
  const envelope = encodeEnvelope({ action: Action.ITI38, messageId, to: ep.url, body, request: true });
  const outbound = new Outbound(tls, (url) => url === ep.url);
  const endpoint: Endpoint = { ...ep, timeoutMs };
  const t0 = performance.now();
  try {
    const res = await outbound.post({
      endpoint,
      contentType: `application/soap+xml; charset=UTF-8; action="${Action.ITI38}"`,
      body: envelope,
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeoutMs: timeoutMs,
    });
    result.httpStatus = res.status;
    const msg = await readSoapMessage(res.body, res.contentType, {
      maxRootBytes: ep.maxResponseBytes,
      maxPartHeaderBytes: 16 * 1024,
      maxParts: 16,
      maxTotalBytes: ep.maxResponseBytes,
    });
    await msg.attachments.discard();
    const answer = decodeEnvelope(
      msg.envelope,
      { maxBytes: ep.maxResponseBytes, maxTextLength: ep.maxResponseBytes },
      false,
    );
    result.latencyMs = Math.round(performance.now() - t0);
    if (answer.payload.is(NS.soap, 'Fault')) {
      result.fault = faultReason(answer);
      return result;
    }
    const q = decodeAdhocQueryResponse(answer.doc, answer.payload);
    result.status = q.status;
    result.objects = q.objects.length;
    result.errors = q.errors;
    result.ok =
      res.status === 200 && (answer.wsa.relatesTo === undefined || answer.wsa.relatesTo === messageId);
    if (!result.ok)
      result.failure = {
        kind: 'bad-response',
        message: res.status !== 200 ? `HTTP ${res.status}` : 'wsa:RelatesTo does not match',
      };
  } catch (e) {
    result.latencyMs = Math.round(performance.now() - t0);
    const f = e instanceof CallFailure ? e : undefined;
    result.failure = { kind: f?.kind ?? 'bad-response', message: (e as Error)?.message ?? String(e) };
  } finally {
    await outbound.close();
  }
  return result;
}

/** Opens a verified TLS connection to the endpoint and reads the certificate the peer presents. */
export function peerCertificate(
  url: string,
  tls: TlsClientOptions,
  timeoutMs: number,
): Promise<{ certificate?: PeerCertificateInfo; error?: string }> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port: Number(u.port || 443),
      servername: isIP(host) ? undefined : host,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      minVersion: 'TLSv1.2',
      ciphers: tls.ciphers ?? DEFAULT_CIPHERS,
      rejectUnauthorized: true,
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once('secureConnect', () => {
      const c: PeerCertificate = socket.getPeerCertificate();
      resolve({
        certificate: {
          subject: dn(c.subject),
          issuer: dn(c.issuer),
          validFrom: new Date(c.valid_from).toISOString(),
          validTo: new Date(c.valid_to).toISOString(),
          fingerprint256: c.fingerprint256,
          serialNumber: c.serialNumber,
          subjectAltName: c.subjectaltname,
          protocol: socket.getProtocol() ?? undefined,
          cipher: socket.getCipher()?.name,
        },
      });
      socket.end();
    });
    socket.once('error', (e) => resolve({ error: e.message }));
  });
}

function dn(o: PeerCertificate['subject'] | undefined): string {
  return Object.entries(o ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

export function formatProbe(r: ProbeResult): string {
  const lines = [`probe ${r.community.homeCommunityId} (${r.community.name})${r.url ? ` at ${r.url}` : ''}`];
  if (r.tls?.certificate) {
    const c = r.tls.certificate;
    lines.push(
      `  TLS:      verified, ${c.protocol ?? '?'} ${c.cipher ?? ''}`.trimEnd(),
      `  subject:  ${c.subject}`,
      `  issuer:   ${c.issuer}`,
      `  valid:    ${c.validFrom} to ${c.validTo}`,
      `  sha256:   ${c.fingerprint256}`,
    );
    if (c.subjectAltName) lines.push(`  SAN:      ${c.subjectAltName}`);
  } else if (r.tls?.error) {
    lines.push(`  TLS:      FAILED: ${r.tls.error}`);
  }
  lines.push(
    `  query:    ITI-38 ${r.query}${r.query === 'GetDocuments' ? ' (an entryUUID that matches nothing)' : ''}`,
  );
  if (r.latencyMs !== undefined) lines.push(`  latency:  ${r.latencyMs} ms`);
  if (r.httpStatus !== undefined) lines.push(`  HTTP:     ${r.httpStatus}`);
  if (r.fault) lines.push(`  fault:    ${r.fault}`);
  if (r.status) lines.push(`  status:   ${r.status}, ${r.objects ?? 0} object(s)`);
  for (const e of r.errors ?? [])
    lines.push(
      `  error:    ${e.errorCode} (${e.severity})${e.location ? ` at ${e.location}` : ''}: ${e.codeContext}`,
    );
  if (r.failure) lines.push(`  failure:  ${r.failure.kind}: ${r.failure.message}`);
  lines.push(r.ok ? 'OK' : 'FAILED');
  return lines.join('\n') + '\n';
}

/** One line per community, for `probe --all`. */
export function formatProbeLine(r: ProbeResult): string {
  const who = `${r.community.homeCommunityId} (${r.community.name})`;
  const ms = r.latencyMs === undefined ? '' : ` ${r.latencyMs} ms`;
  if (r.ok) {
    const errors = r.errors?.length ? `, ${r.errors.map((e) => e.errorCode).join(' ')}` : '';
    return `OK     ${who}${ms}: ${r.status}, ${r.objects ?? 0} object(s)${errors}\n`;
  }
  const why = r.fault
    ? `SOAP fault: ${r.fault}`
    : r.failure
      ? `${r.failure.kind}: ${r.failure.message}`
      : r.tls?.error
        ? `TLS: ${r.tls.error}`
        : 'failed';
  return `FAILED ${who}${ms}: ${why}\n`;
}

export interface ProbeSummary {
  probed: number;
  ok: number;
  failed: number;
  /** Failures by kind (timeout, refused, fault, ...). */
  failures: Record<string, number>;
  latencyMs?: { p50: number; max: number };
}

export function summarizeProbes(results: ProbeResult[]): ProbeSummary {
  const failures: Record<string, number> = {};
  for (const r of results) {
    if (r.ok) continue;
    const kind = r.fault ? 'fault' : (r.failure?.kind ?? (r.tls?.error ? 'tls' : 'failed'));
    failures[kind] = (failures[kind] ?? 0) + 1;
  }
  const lat = results
    .filter((r) => r.ok && r.latencyMs !== undefined)
    .map((r) => r.latencyMs as number)
    .sort((a, b) => a - b);
  const ok = results.filter((r) => r.ok).length;
  return {
    probed: results.length,
    ok,
    failed: results.length - ok,
    failures,
    ...(lat.length ? { latencyMs: { p50: lat[Math.floor(lat.length / 2)], max: lat[lat.length - 1] } } : {}),
  };
}

export function formatProbeSummary(s: ProbeSummary, concurrency: number): string {
  const kinds = Object.entries(s.failures)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return (
    `probed ${s.probed} communities (${concurrency} at a time): ${s.ok} OK, ${s.failed} failed` +
    (kinds ? ` (${kinds})` : '') +
    (s.latencyMs ? `; latency of the answers p50 ${s.latencyMs.p50} ms, max ${s.latencyMs.max} ms` : '') +
    '\n'
  );
}
