/**
 * Is a peer's certificate (or a CA above it) revoked? Per trust anchor (directory `revocation`):
 *
 *  - CRLs: every certificate of the presented chain below the anchor must be covered by a CRL of
 *    its issuer — verified with the issuer's key, current (thisUpdate ≤ now ≤ nextUpdate; a CRL
 *    past nextUpdate only with `allowExpiredCrl`, logged) — and not listed in it. A CRL file is
 *    looked at again when it changes (checked at most once a second, at use); a file that no longer
 *    parses keeps the previous CRLs in force and is logged. A reload is audited as a security
 *    configuration change.
 *  - OCSP: the peer's own certificate is asked of the anchor's responder; answers are cached until
 *    their nextUpdate (60 s without one). `good` accepts the certificate; `revoked` and `unknown`
 *    refuse it; a responder that does not answer leaves the decision to the CRLs, and without
 *    CRLs refuses — unless `softFail`, which accepts with a warning.
 *
 * The chain was verified by TLS already; this only adds "not revoked". A chain that hangs from an
 * anchor without revocation settings is not checked.
 */
import type { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { auditConfigurationLoaded } from '../../audit/gateway';
import type { AuditSink } from '../../audit/event';
import type { Endpoint, RevocationSettings } from '../../directory/types';
import type { OutboundResponse, PostOptions } from '../../outbound/client';
import type { Logger } from '../../util/log';
import { chainsTo, readCertificateFiles } from '../certificates';
import { issuedBy, readCrlFile, type Crl } from './crl';
import { certificateParts } from './der';
import { certId, certIdKey, encodeOcspRequest, verifyOcspResponse, type OcspAnswer } from './ocsp';

export type RevocationVerdict = { ok: true } | { ok: false; reason: string };

/** How the checker sends OCSP requests: the gateway's outbound client (directory URLs only). */
export type OcspPoster = (
  o: Pick<PostOptions, 'endpoint' | 'contentType' | 'body' | 'signal' | 'headersTimeoutMs'>,
) => Promise<OutboundResponse>;

const NO_NEXT_UPDATE_CACHE_MS = 60_000;
const STAT_EVERY_MS = 1_000;

interface CrlFile {
  path: string;
  stamp: string;
  checked: number;
  crls: Crl[];
}

interface Anchor {
  settings: RevocationSettings;
  certs: X509Certificate[];
  files: CrlFile[];
  endpoint?: Endpoint;
}

export class RevocationChecker {
  private anchors: Anchor[];
  private readonly ocspCache = new Map<string, { answer: OcspAnswer; until: number }>();
  private readonly inFlight = new Map<string, Promise<OcspAnswer>>();
  private post?: OcspPoster;
  private readonly log: Logger;

  constructor(
    settings: RevocationSettings[],
    private readonly o: { log: Logger; audit: AuditSink; now?: () => Date; maxCached?: number },
  ) {
    this.log = o.log.child({ component: 'revocation' });
    // Read at start: a CRL file that cannot be read or parsed stops the service (as a bad directory).
    this.anchors = readAnchors(settings);
  }

  /**
   * New settings from a reloaded directory: read now (throws, changing nothing, on a file that
   * cannot be read); `commit` puts them in force and forgets the cached OCSP answers.
   */
  prepare(settings: RevocationSettings[]): () => void {
    const next = readAnchors(settings);
    return () => {
      this.anchors = next;
      this.ocspCache.clear();
    };
  }

  get configured(): boolean {
    return this.anchors.length > 0;
  }

  /** The outbound client OCSP requests go through (set once the gateway has one). */
  useOutbound(post: OcspPoster): void {
    this.post = post;
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** Checks a verified chain, leaf first (presentedChain). */
  async check(chain: X509Certificate[]): Promise<RevocationVerdict> {
    const anchor = this.anchors.find((a) => chainsTo(chain, a.certs));
    if (!anchor || chain.length === 0) return { ok: true };
    const now = this.now();
    const below = chainBelow(chain, anchor.certs);
    const s = anchor.settings;
    if (s.crls.length > 0) this.refresh(anchor);
    for (let i = 0; i < below.length; i++) {
      const cert = below[i];
      const issuer = [chain[i + 1], ...anchor.certs].find((c) => c && issues(c, cert));
      if (!issuer)
        return { ok: false, reason: `no issuer certificate for ${cert.subject.replace(/\n/g, ',')}` };
      let ocspSaid: OcspAnswer | undefined;
      if (i === 0 && anchor.endpoint) {
        try {
          ocspSaid = await this.ocsp(cert, issuer, anchor.endpoint, now);
        } catch (e) {
          this.log.warn('OCSP responder did not answer', {
            url: anchor.endpoint.url,
            reason: (e as Error).message,
          });
        }
        if (ocspSaid?.status === 'revoked')
          return {
            ok: false,
            reason: `certificate revoked (OCSP, ${ocspSaid.revokedAt?.toISOString() ?? 'no date'})`,
          };
        if (ocspSaid?.status === 'unknown')
          return { ok: false, reason: 'certificate unknown to the OCSP responder' };
        if (ocspSaid?.status === 'good' && s.crls.length === 0) continue;
      }
      if (s.crls.length === 0) {
        if (s.ocsp?.softFail) {
          this.log.warn('certificate accepted without a revocation answer (OCSP softFail)', {
            subject: cert.subject.replace(/\n/g, ','),
          });
          continue;
        }
        return { ok: false, reason: 'revocation status unknown: the OCSP responder did not answer' };
      }
      const crlSaid = this.crlStatus(anchor, cert, issuer, now);
      if (crlSaid) {
        // A fresh OCSP "good" stands for the peer's own certificate when the CRL cannot be used.
        if (ocspSaid?.status === 'good' && !crlSaid.startsWith('certificate revoked')) continue;
        return { ok: false, reason: crlSaid };
      }
    }
    return { ok: true };
  }

  /** undefined: covered and not revoked; else why the certificate is refused. */
  private crlStatus(
    anchor: Anchor,
    cert: X509Certificate,
    issuer: X509Certificate,
    now: Date,
  ): string | undefined {
    const serial = certificateParts(cert.raw).serial;
    const crls = anchor.files.flatMap((f) => f.crls).filter((c) => issuedBy(c, issuer));
    if (crls.length === 0) return `no CRL of ${issuer.subject.replace(/\n/g, ',')} is configured`;
    // The newest CRL of that issuer decides.
    const crl = crls.reduce((a, b) => (b.thisUpdate > a.thisUpdate ? b : a));
    if (crl.thisUpdate.getTime() > now.getTime() + 5 * 60_000) return 'the CRL is not yet valid';
    if (crl.nextUpdate && crl.nextUpdate < now) {
      if (!anchor.settings.allowExpiredCrl)
        return `the CRL of ${issuer.subject.replace(/\n/g, ',')} expired at ${crl.nextUpdate.toISOString()}`;
      this.log.warn('using a CRL past its nextUpdate (allowExpiredCrl)', {
        nextUpdate: crl.nextUpdate.toISOString(),
      });
    }
    const revokedAt = crl.revoked.get(serial);
    return revokedAt ? `certificate revoked (CRL, ${revokedAt.toISOString()})` : undefined;
  }

  /** Rereads CRL files that changed (at most once a second each). */
  private refresh(anchor: Anchor): void {
    const t = Date.now();
    anchor.files.forEach((f, i) => {
      if (t - f.checked < STAT_EVERY_MS) return;
      f.checked = t;
      let stamp: string;
      try {
        stamp = fileStamp(f.path);
      } catch (e) {
        this.log.error('CRL file unreadable; the loaded CRLs stay in force', {
          file: f.path,
          reason: (e as Error).message,
        });
        return;
      }
      if (stamp === f.stamp) return;
      try {
        const next = loadCrlFile(f.path);
        anchor.files[i] = next;
        this.log.info('CRL reloaded', { file: f.path, crls: next.crls.length });
        auditConfigurationLoaded(this.o.audit, {
          objectId: f.path,
          description: `CRL reloaded: ${next.crls
            .map(
              (c) =>
                `${c.revoked.size} revoked, thisUpdate ${c.thisUpdate.toISOString()}, nextUpdate ${c.nextUpdate?.toISOString() ?? '-'}`,
            )
            .join('; ')}`,
          kinds: ['security'],
        });
      } catch (e) {
        f.stamp = stamp;
        this.log.error('CRL file not usable; the loaded CRLs stay in force', {
          file: f.path,
          reason: (e as Error).message,
        });
      }
    });
  }

  private async ocsp(
    cert: X509Certificate,
    issuer: X509Certificate,
    endpoint: Endpoint,
    now: Date,
  ): Promise<OcspAnswer> {
    const id = certId(cert, issuer);
    const key = certIdKey(id);
    const hit = this.ocspCache.get(key);
    if (hit && hit.until > now.getTime()) return hit.answer;
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.fetch(encodeOcspRequest(id), endpoint)
        .then((der) => verifyOcspResponse(der, id, issuer, this.now()))
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    const answer = await p;
    const until = answer.nextUpdate?.getTime() ?? now.getTime() + NO_NEXT_UPDATE_CACHE_MS;
    this.ocspCache.delete(key);
    this.ocspCache.set(key, { answer, until });
    while (this.ocspCache.size > (this.o.maxCached ?? 10_000)) {
      const oldest = this.ocspCache.keys().next().value;
      if (oldest === undefined) break;
      this.ocspCache.delete(oldest);
    }
    return answer;
  }

  private async fetch(body: Buffer, endpoint: Endpoint): Promise<Buffer> {
    if (!this.post) throw new Error('no outbound client for OCSP');
    const res = await this.post({
      endpoint,
      contentType: 'application/ocsp-request',
      body,
      signal: AbortSignal.timeout(endpoint.timeoutMs),
      headersTimeoutMs: endpoint.timeoutMs,
    });
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    return Buffer.concat(chunks);
  }
}

function issues(ca: X509Certificate, cert: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** The chain from the leaf up to, not including, the anchor (or the whole chain if none is in it). */
function chainBelow(chain: X509Certificate[], anchors: X509Certificate[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const c of chain) {
    if (anchors.some((a) => a.fingerprint256 === c.fingerprint256)) break;
    out.push(c);
  }
  return out;
}

function fileStamp(path: string): string {
  const st = statSync(path);
  return `${st.size}|${st.mtimeMs}`;
}

function loadCrlFile(path: string): CrlFile {
  const stamp = fileStamp(path);
  let crls: Crl[];
  try {
    crls = readCrlFile(readFileSync(path));
  } catch (e) {
    throw new Error(`${path}: not a readable CRL: ${(e as Error).message}`, { cause: e });
  }
  return { path, stamp, checked: Date.now(), crls };
}

function readAnchors(settings: RevocationSettings[]): Anchor[] {
  return settings.map((s) => ({
    settings: s,
    certs: readCertificateFiles([s.trustAnchor])[0].certs,
    files: s.crls.map((path) => loadCrlFile(path)),
    endpoint: s.ocsp
      ? { url: s.ocsp.url, timeoutMs: s.ocsp.timeoutMs, maxConcurrent: 8, maxResponseBytes: 64 * 1024 }
      : undefined,
  }));
}
