import type { PeerIdentity } from '../directory/types';
import type { Caller, Gateway } from '../pipeline/transaction';

/**
 * Which wsa:ReplyTo / wsa:FaultTo addresses a requester may name (the gateway is never an open relay).
 *
 * A pattern is `scheme://host[:port|:*][/path-prefix]`. The candidate must be printable ASCII (no
 * IDN or other unicode look-alikes, no backslashes, no credentials, no fragment) and is parsed with
 * the WHATWG URL parser; scheme and host must then be equal, the port equal (or any with `:*`), and
 * the normalised path must start with the pattern's path at a segment boundary.
 */
export interface ReplyToPattern {
  protocol: string;
  hostname: string;
  /** Effective port, or '*' for any. */
  port: string;
  /** Normalised path prefix, '/' for any path. */
  path: string;
}

const PRINTABLE_ASCII = /^[\x21-\x5b\x5d-\x7e]+$/; // visible ASCII without backslash
const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

export function parseReplyToPattern(pattern: string): ReplyToPattern | undefined {
  const m = /^(https?):\/\/([^/?#]+)([^?#]*)$/i.exec(pattern.trim());
  if (!m || !PRINTABLE_ASCII.test(pattern.trim())) return undefined;
  const anyPort = m[2].endsWith(':*');
  const hostPort = anyPort ? m[2].slice(0, -2) : m[2];
  if (hostPort.includes('@')) return undefined;
  let u: URL;
  try {
    u = new URL(`${m[1]}://${hostPort}${m[3] || '/'}`);
  } catch {
    return undefined;
  }
  return {
    protocol: u.protocol,
    hostname: u.hostname,
    port: anyPort ? '*' : u.port || DEFAULT_PORT[u.protocol],
    path: u.pathname,
  };
}

/** The normalised URL to send to when `candidate` matches one of `patterns`, else undefined. */
export function matchReplyTo(patterns: readonly string[], candidate: string | undefined): string | undefined {
  if (candidate === undefined || candidate.length > 2048 || !PRINTABLE_ASCII.test(candidate))
    return undefined;
  let u: URL;
  try {
    u = new URL(candidate);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  if (u.username || u.password || u.hash || candidate.includes('#')) return undefined;
  // The raw authority must be exactly what the parser saw as host[:port] (rejects "a@b", "a\b" etc.).
  const authority = /^https?:\/\/([^/?#]*)/i.exec(candidate)?.[1]?.toLowerCase();
  if (authority !== u.host && authority !== `${u.host}:${DEFAULT_PORT[u.protocol]}`) return undefined;
  const port = u.port || DEFAULT_PORT[u.protocol];
  for (const raw of patterns) {
    const p = parseReplyToPattern(raw);
    if (!p || p.protocol !== u.protocol || p.hostname !== u.hostname) continue;
    if (p.port !== '*' && p.port !== port) continue;
    if (!pathUnder(u.pathname, p.path)) continue;
    return u.href;
  }
  return undefined;
}

function pathUnder(path: string, prefix: string): boolean {
  if (prefix === '/' || prefix === '') return true;
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * The ReplyTo patterns the directory grants this caller: the consumer (initiating side) or the
 * community (responding side) its certificate maps to; without a mapping, every entry whose
 * identity the caller's certificate satisfies, and the entries that name no identity at all.
 */
export function replyToPatternsFor(gateway: Gateway, caller: Caller): string[] {
  const d = gateway.directory;
  if (gateway.role === 'initiating') {
    const entries = caller.consumer
      ? [caller.consumer]
      : d.consumers.filter((c) => identityFits(c.identity, caller));
    return entries.flatMap((c) => c.replyTo);
  }
  const entries = caller.community
    ? [caller.community]
    : d.communities.filter((c) => c.acceptRequests && identityFits(c.identity, caller));
  return entries.flatMap((c) => c.replyTo);
}

export function identityFits(identity: PeerIdentity | undefined, caller: Caller): boolean {
  if (!identity) return true;
  const names = caller.certificate?.names ?? [];
  return names.some((n) => identity.names.includes(n));
}
