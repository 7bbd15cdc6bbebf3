/**
 * Security of a gateway process, wired by service/bootstrap.ts:
 *
 *  - identities.ts   client certificate → community / consumer (trust anchor + name)
 *  - admission.ts    the engine's `admit` hook: acceptRequests, consumers, XUA policy (R5, R6, R9)
 *  - xua/           XUA assertions: required/optional check (check.ts), validation (index.ts), human requestor for audit
 *  - peer-limits.ts  per-peer rate, in-flight, connection and size limits, body pauses (R43)
 *  - server-guards.ts TLS handshake failures audited, HTTP-level errors as SOAP faults, timeouts
 *  - peer-tls.ts     outbound: each community's endpoints verified against its own trust anchors
 *                    and identity names; outbound handshake failures audited
 *  - revocation/     CRLs and OCSP per trust anchor, both directions; OCSP stapling (R5)
 *
 * See docs/security.md for the trust model.
 */
import type { Server } from 'node:http';
import type { Express } from 'express';
import type { AuditSink } from '../audit/event';
import { INBOUND_LIMIT_DEFAULTS } from '../directory/load';
import type { Directory, InboundLimits } from '../directory/types';
import type { OutboundPeers } from '../outbound/client';
import type { EngineHooks } from '../pipeline/engine';
import type { Logger } from '../util/log';
import { createAdmission } from './admission';
import { PeerIdentities } from './identities';
import { PeerLimiter, peerLimitsMiddleware } from './peer-limits';
import { outboundPeers } from './peer-tls';
import { AuditThrottle, installServerGuards } from './server-guards';
import { XuaCheck } from './xua/check';
import { installInboundRevocation, revocationGate, RevocationChecker } from './revocation';

export interface SecurityOptions {
  role: 'initiating' | 'responding';
  directory: Directory;
  audit: AuditSink;
  log: Logger;
  /** Paths of the SOAP transaction endpoints. */
  soapPaths: string[];
  /** The process-wide request size limit (XCAI_MAX_REQUEST_BYTES). */
  maxRequestBytes: number;
  /** Clock for XUA time checks (tests). */
  now?: () => Date;
}

export interface GatewaySecurity {
  /** The `admit` hook. */
  readonly hooks: EngineHooks;
  /** Per-community outbound TLS and handshake-failure audit, for `Outbound`. */
  readonly outbound: OutboundPeers;
  /** Trust anchors the directory names (PEM), added to the TLS server's acceptable CAs. */
  readonly trustAnchors: Buffer[];
  readonly limits: InboundLimits;
  readonly limiter: PeerLimiter;
  /** Mounts the identification / per-peer limit middleware (before every route). */
  extend(app: Express): void;
  /** Installs the handshake / client-error / connection guards on the listening server. */
  install(server: Server, tls: boolean): void;
  /** Revocation checks of peer certificates (R5); absent without directory `revocation`. */
  readonly revocation?: RevocationChecker;
}

export function createSecurity(o: SecurityOptions): GatewaySecurity {
  const log = o.log.child({ component: 'security' });
  const identities = new PeerIdentities(o.directory, o.role);
  const limits = o.directory.inboundLimits ?? INBOUND_LIMIT_DEFAULTS;
  const limiter = new PeerLimiter(limits.maxTrackedPeers);
  const throttle = new AuditThrottle();
  const xua = o.directory.xua ? new XuaCheck(o.directory.xua, o.now) : undefined;
  const admit = createAdmission({ role: o.role, directory: o.directory, audit: o.audit, log: o.log, xua });
  const revocation = o.directory.revocation?.length
    ? new RevocationChecker(o.directory.revocation, { log: o.log, audit: o.audit })
    : undefined;
  if (o.role === 'responding') {
    const open = o.directory.communities.filter((c) => !c.identity && c.acceptRequests);
    if (open.length)
      log.warn('communities without identity accept any caller the TLS settings let in', {
        communities: open.map((c) => c.homeCommunityId),
      });
  } else if (o.directory.consumers.length === 0 || o.directory.consumers.some((c) => !c.identity)) {
    log.info('consumers without a certificate identity are admitted (see consumers in the directory)');
  }
  if (!xua) log.info('XUA validation is not configured: assertions are relayed unchecked');
  return {
    hooks: { admit },
    outbound: outboundPeers({ directory: o.directory, audit: o.audit, log: o.log, throttle, revocation }),
    revocation,
    trustAnchors: identities.trustAnchorPems,
    limits,
    limiter,
    extend(app) {
      if (revocation) app.use(revocationGate);
      app.use(
        peerLimitsMiddleware({
          identities,
          limiter,
          defaults: limits,
          maxRequestBytes: o.maxRequestBytes,
          soapPaths: new Set(o.soapPaths),
          log: o.log,
        }),
      );
    },
    install(server, tls) {
      if (tls && revocation)
        installInboundRevocation(server, revocation, { audit: o.audit, log: o.log, throttle });
      installServerGuards(server, { limits, identities, limiter, audit: o.audit, log: o.log, throttle, tls });
    },
  };
}

export { PeerIdentities, peerKey, factsOf, connectionFacts } from './identities';
export { PeerLimiter } from './peer-limits';
export { XuaCheck, humanRequestorOf } from './xua/check';
export { certificateNames, chainsTo, parsePemCertificates } from './certificates';
