/**
 * Security of a gateway process, wired by service/bootstrap.ts:
 *
 *  - identities.ts   client certificate → community / consumer (trust anchor + name)
 *  - admission.ts    the engine's `admit` hook: acceptRequests, consumers, XUA policy (R5, R6, R9)
 *  - xua/           XUA assertions: required/optional check (check.ts), validation (index.ts), human requestor for audit
 *  - peer-limits.ts  per-peer rate, in-flight, connection and size limits, body pauses (R43)
 *  - server-guards.ts TLS handshake failures audited, HTTP-level errors as SOAP faults, timeouts
 *  - connection-guard.ts half-open and idle connections bounded per address and in total
 *  - server-tls.ts   the TLS server context from the settings (start and reload), checks of new material
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
  /**
   * Prepares a new directory (reload): identities, trust anchors, admission, XUA, limits and
   * outbound trust are built from it; `commit` makes them current at once (requests in progress
   * keep what they started with). Throws, changing nothing, when the directory's files cannot be read.
   */
  prepare(directory: Directory): { trustAnchors: Buffer[]; commit(): void };
  /** Revocation checks of peer certificates (R5), per directory `revocation` (none: nothing checked). */
  readonly revocation: RevocationChecker;
}

/** Everything the security features derive from one directory. */
interface SecurityState {
  identities: PeerIdentities;
  limits: InboundLimits;
  admit: NonNullable<EngineHooks['admit']>;
  outbound: OutboundPeers;
  middleware: ReturnType<typeof peerLimitsMiddleware>;
}

export function createSecurity(o: SecurityOptions): GatewaySecurity {
  const log = o.log.child({ component: 'security' });
  const throttle = new AuditThrottle();
  const first = o.directory.inboundLimits ?? INBOUND_LIMIT_DEFAULTS;
  const revocation = new RevocationChecker(o.directory.revocation ?? [], { log: o.log, audit: o.audit });
  const limiter = new PeerLimiter(first.maxTrackedPeers);
  const build = (directory: Directory): SecurityState => {
    const identities = new PeerIdentities(directory, o.role);
    const limits = directory.inboundLimits ?? INBOUND_LIMIT_DEFAULTS;
    const xua = directory.xua ? new XuaCheck(directory.xua, o.now) : undefined;
    return {
      identities,
      limits,
      admit: createAdmission({ role: o.role, directory, audit: o.audit, log: o.log, xua }),
      outbound: outboundPeers({ directory, audit: o.audit, log: o.log, throttle, revocation }),
      middleware: peerLimitsMiddleware({
        identities,
        limiter,
        defaults: limits,
        maxRequestBytes: o.maxRequestBytes,
        soapPaths: new Set(o.soapPaths),
        log: o.log,
      }),
    };
  };
  const explain = (directory: Directory) => {
    if (o.role === 'responding') {
      const open = directory.communities.filter((c) => !c.identity && c.acceptRequests);
      if (open.length)
        log.warn('communities without identity accept any caller the TLS settings let in', {
          communities: open.map((c) => c.homeCommunityId),
        });
    } else if (directory.consumers.length === 0 || directory.consumers.some((c) => !c.identity)) {
      log.info('consumers without a certificate identity are admitted (see consumers in the directory)');
    }
    if (!directory.xua) log.info('XUA validation is not configured: assertions are relayed unchecked');
  };
  let st = build(o.directory);
  explain(o.directory);
  let server: Server | undefined;
  return {
    hooks: { admit: (tx, env, caller) => st.admit(tx, env, caller) },
    outbound: {
      tlsFor: (url, identity) => st.outbound.tlsFor?.(url, identity),
      onTlsFailure: (url, failure) => st.outbound.onTlsFailure?.(url, failure),
    },
    get trustAnchors() {
      return st.identities.trustAnchorPems;
    },
    get limits() {
      return st.limits;
    },
    limiter,
    revocation,
    extend(app) {
      app.use(revocationGate);
      app.use((req, res, next) => st.middleware(req, res, next));
    },
    install(s, tls) {
      server = s;
      if (tls) installInboundRevocation(s, revocation, { audit: o.audit, log: o.log, throttle });
      installServerGuards(s, {
        get limits() {
          return st.limits;
        },
        get identities() {
          return st.identities;
        },
        limiter,
        audit: o.audit,
        log: o.log,
        throttle,
        tls,
      });
    },
    prepare(directory) {
      const next = build(directory);
      const nextRevocation = revocation.prepare(directory.revocation ?? []);
      return {
        trustAnchors: next.identities.trustAnchorPems,
        commit() {
          st = next;
          nextRevocation();
          if (server) server.headersTimeout = st.limits.headersTimeoutMs;
          explain(directory);
        },
      };
    },
  };
}

export { PeerIdentities, peerKey, factsOf, connectionFacts } from './identities';
export { PeerLimiter } from './peer-limits';
export { XuaCheck, humanRequestorOf } from './xua/check';
export { certificateNames, chainsTo, parsePemCertificates } from './certificates';
