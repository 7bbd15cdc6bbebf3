/**
 * Outbound per-peer trust: a request to a community's endpoint (ITI-38 / ITI-39 / RAD-75) verifies
 * the server against THAT community's trust anchors (when its identity lists any; else the
 * gateway's own XCAI_TLS_CA) and requires the server certificate to carry one of the community's
 * identity names, on top of the host name check. An async response to a ReplyTo is held to the
 * requester's identity in the same way. Failed handshakes are audited as node authentication
 * failures (throttled per peer).
 */
import type { AuditSink } from '../audit/event';
import { auditNodeAuthenticationFailure } from '../audit/gateway';
import type { Directory, PeerIdentity } from '../directory/types';
import type { OutboundPeers, TlsClientOptions } from '../outbound/client';
import type { Logger } from '../util/log';
import { readCertificateFiles } from './certificates';
import type { AuditThrottle } from './server-guards';
import type { RevocationChecker } from './revocation/checker';

export function outboundPeers(o: {
  directory: Directory;
  audit: AuditSink;
  log: Logger;
  throttle: AuditThrottle;
  /** Revocation of the peers' certificates (R5), when the directory configures it. */
  revocation?: RevocationChecker;
}): OutboundPeers {
  const byIdentity = new Map<PeerIdentity, TlsClientOptions>();
  const pemByFile = new Map<string, Buffer>();
  const profile = (identity: PeerIdentity): TlsClientOptions => {
    let p = byIdentity.get(identity);
    if (!p) {
      const ca = identity.trustAnchors.map((f) => {
        let pem = pemByFile.get(f);
        if (!pem) {
          pem = readCertificateFiles([f])[0].pem;
          pemByFile.set(f, pem);
        }
        return pem;
      });
      p = {
        serverNames: identity.names,
        ...(ca.length ? { ca } : {}),
        ...(o.revocation ? { revocation: o.revocation } : {}),
      };
      byIdentity.set(identity, p);
    }
    return p;
  };
  const byUrl = new Map<string, TlsClientOptions>();
  for (const c of o.directory.communities) {
    if (!c.identity) continue;
    const p = profile(c.identity);
    for (const e of Object.values(c.endpoints)) if (e) byUrl.set(e.url, p);
  }
  for (const c of o.directory.consumers) if (c.identity) profile(c.identity);
  const log = o.log.child({ component: 'outbound-tls' });
  return {
    tlsFor: (url, identity) => byUrl.get(url) ?? (identity ? profile(identity) : undefined),
    onTlsFailure: (url, failure) => {
      let u: URL | undefined;
      try {
        u = new URL(url);
      } catch {
        u = undefined;
      }
      log.warn('TLS handshake with a peer failed', { url, reason: failure.message });
      const left = o.throttle.pass(`out:${u?.host ?? url}`);
      if (left === undefined) return;
      auditNodeAuthenticationFailure(o.audit, {
        remoteAddress: u?.hostname.replace(/^\[|\]$/g, ''),
        remotePort: u?.port ? Number(u.port) : 443,
        reason:
          `outbound to ${url}: ${failure.message}` +
          (left > 0 ? ` (${left} similar failures not recorded)` : ''),
      });
    },
  };
}
