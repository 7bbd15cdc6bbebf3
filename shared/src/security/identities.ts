/**
 * Who is calling, by certificate: maps the TLS client certificate of a connection to the community
 * (responding side, and async responses at the initiating side) or local consumer (initiating side)
 * whose directory `identity` it satisfies. An identity is satisfied when the certificate names one
 * of `identity.names` (subject CN or a subjectAltName) AND its chain hangs from one of
 * `identity.trustAnchors` (when the entry lists any; else any trust anchor of the server will do).
 *
 * The mapping is computed once per connection and stored on the request's Caller, which the
 * engine, the audit records, the metrics and the async exchange all read (Caller.community /
 * Caller.consumer).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { Directory, LocalConsumer, PeerIdentity, PeerLimits, RemoteCommunity } from '../directory/types';
import { callerOf } from '../inbound/server';
import type { Caller } from '../pipeline/transaction';
import {
  certificateNames,
  chainsTo,
  presentedChain,
  readCertificateFiles,
  subjectString,
} from './certificates';

/** A client certificate the TLS handshake verified. */
export interface PresentedCertificate {
  subject: string;
  names: string[];
  fingerprint256: string;
  chain: X509Certificate[];
}

/** What the connection tells about the peer. */
export interface ConnectionFacts {
  presented?: PresentedCertificate;
  /** A certificate was presented but did not verify (client auth "optional"): OpenSSL's reason. */
  unverified?: { reason: string; subject: string };
}

const factsBySocket = new WeakMap<Socket, ConnectionFacts>();
const factsByCaller = new WeakMap<Caller, ConnectionFacts>();

/** The facts of a connection (computed once per socket). */
export function connectionFacts(socket: Socket): ConnectionFacts {
  const known = factsBySocket.get(socket);
  if (known) return known;
  const facts: ConnectionFacts = {};
  const tls = socket as Partial<TLSSocket>;
  if (tls.encrypted && tls.getPeerCertificate) {
    const cert = tls.getPeerCertificate(true);
    if (cert && Object.keys(cert).length > 0) {
      if (tls.authorized) {
        facts.presented = {
          subject: subjectString(cert),
          names: certificateNames(cert),
          fingerprint256: cert.fingerprint256,
          chain: presentedChain(cert),
        };
      } else {
        facts.unverified = {
          reason: String(tls.authorizationError ?? 'certificate not verified'),
          subject: subjectString(cert),
        };
      }
    }
  }
  factsBySocket.set(socket, facts);
  return facts;
}

/** The facts recorded for a caller by `PeerIdentities.identify` (undefined: not identified). */
export function factsOf(caller: Caller): ConnectionFacts | undefined {
  return factsByCaller.get(caller);
}

export class PeerIdentities {
  private readonly anchors = new Map<PeerIdentity, X509Certificate[]>();
  /** Every trust anchor the directory names (PEM), for the TLS server's list of acceptable CAs. */
  readonly trustAnchorPems: Buffer[] = [];

  constructor(
    private readonly directory: Directory,
    private readonly role: 'initiating' | 'responding',
  ) {
    const byFile = new Map<string, { pem: Buffer; certs: X509Certificate[] }>();
    const load = (identity: PeerIdentity | undefined) => {
      if (!identity) return;
      const certs: X509Certificate[] = [];
      for (const f of identity.trustAnchors) {
        let entry = byFile.get(f);
        if (!entry) {
          entry = readCertificateFiles([f])[0];
          byFile.set(f, entry);
          this.trustAnchorPems.push(entry.pem);
        }
        certs.push(...entry.certs);
      }
      this.anchors.set(identity, certs);
    };
    for (const c of directory.communities) load(c.identity);
    for (const c of directory.consumers) load(c.identity);
  }

  /** Does the presented certificate satisfy this identity (name and anchor)? */
  satisfies(identity: PeerIdentity, p: PresentedCertificate | undefined): boolean {
    if (!p) return false;
    if (!p.names.some((n) => identity.names.includes(n))) return false;
    const anchors = this.anchors.get(identity) ?? [];
    return anchors.length === 0 || chainsTo(p.chain, anchors);
  }

  /** The community whose identity the certificate satisfies (names are unique per the loader). */
  communityFor(p: PresentedCertificate | undefined): RemoteCommunity | undefined {
    return this.directory.communities.find((c) => c.identity && this.satisfies(c.identity, p));
  }

  consumerFor(p: PresentedCertificate | undefined): LocalConsumer | undefined {
    return this.directory.consumers.find((c) => c.identity && this.satisfies(c.identity, p));
  }

  /** The per-peer key (as `peerKey`) and own limits of a connection, before any request. */
  socketPeer(socket: Socket): { key: string; limits?: Partial<PeerLimits> } {
    const p = connectionFacts(socket).presented;
    const community = this.communityFor(p);
    if (community) return { key: `community:${community.homeCommunityId}`, limits: community.inboundLimits };
    const consumer = this.role === 'initiating' ? this.consumerFor(p) : undefined;
    if (consumer) return { key: `consumer:${consumer.name}`, limits: consumer.inboundLimits };
    if (p) return { key: `cert:${p.fingerprint256}` };
    return { key: `address:${socket.remoteAddress ?? 'unknown'}` };
  }

  /**
   * Identifies the caller of `req` once: sets Caller.community (a community whose identity the
   * certificate satisfies; else the only accepting community without identity, if exactly one) and,
   * at the initiating side, Caller.consumer (by identity; else the first consumer without identity).
   */
  identify(req: IncomingMessage): Caller {
    const caller = callerOf(req);
    if (factsByCaller.has(caller)) return caller;
    const facts = connectionFacts(req.socket);
    factsByCaller.set(caller, facts);
    const p = facts.presented;
    const community = this.communityFor(p);
    if (community) caller.community = community;
    else if (this.role === 'responding' && !facts.unverified) {
      const open = this.directory.communities.filter((c) => !c.identity && c.acceptRequests);
      if (open.length === 1) caller.community = open[0];
    }
    if (this.role === 'initiating' && !facts.unverified) {
      caller.consumer = this.consumerFor(p) ?? this.directory.consumers.find((c) => !c.identity);
    }
    return caller;
  }
}

/**
 * A stable key for per-peer limits: the entry the certificate maps to, else the certificate, else
 * the address (entries without identity are shared by many callers, so they are not a key).
 */
export function peerKey(caller: Caller): string {
  if (caller.community?.identity) return `community:${caller.community.homeCommunityId}`;
  if (caller.consumer?.identity) return `consumer:${caller.consumer.name}`;
  const facts = factsOf(caller);
  if (facts?.presented) return `cert:${facts.presented.fingerprint256}`;
  return `address:${caller.remoteAddress}`;
}
