import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Authenticates the hand-over of an async response from the replica it landed on to the replica
 * that waits for it. The receiving replica signs (RelatesTo, owner replica id, expiry) with a key
 * every replica of the deployment derives from the same secret; the owner checks the signature
 * before reading the body, so the hand-over path is no open door.
 */
export const HANDOVER_HEADER = 'x-xcai-handover';
export const HANDOVER_RELATES_TO = 'x-xcai-relates-to';

/**
 * The hand-over key: from XCAI_HANDOVER_SECRET when set, else from the TLS private key all replicas
 * share. Undefined when neither is given: hand-overs are then refused (single replica only).
 */
export function handoverKey(o: { secret?: string; tlsKey?: Buffer | string }): Buffer | undefined {
  const ikm = o.secret ? Buffer.from(o.secret, 'utf8') : o.tlsKey ? Buffer.from(o.tlsKey) : undefined;
  if (!ikm || ikm.length === 0) return undefined;
  return Buffer.from(hkdfSync('sha256', ikm, 'xcai-handover', o.secret ? 'secret-v1' : 'tls-key-v1', 32));
}

function mac(key: Buffer, relatesTo: string, owner: string, expires: number): Buffer {
  return createHmac('sha256', key).update(`v1\n${relatesTo}\n${owner}\n${expires}`).digest();
}

/** Header value for a hand-over to `owner`, valid for `ttlMs`. */
export function signHandover(key: Buffer, relatesTo: string, owner: string, ttlMs = 60_000): string {
  const expires = Date.now() + ttlMs;
  return `v1.${expires}.${mac(key, relatesTo, owner, expires).toString('base64url')}`;
}

/** Why a hand-over header is not acceptable, or undefined when it is. */
export function checkHandover(
  key: Buffer | undefined,
  header: unknown,
  relatesTo: unknown,
  self: string,
): string | undefined {
  if (!key) return 'hand-over is not configured on this replica (no XCAI_HANDOVER_SECRET and no TLS key)';
  if (typeof header !== 'string' || typeof relatesTo !== 'string') return 'hand-over headers missing';
  const m = /^v1\.(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(header);
  if (!m) return 'malformed hand-over header';
  const expires = Number(m[1]);
  if (expires < Date.now()) return 'hand-over expired';
  const want = mac(key, relatesTo, self, expires);
  const got = Buffer.from(m[2], 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'hand-over signature does not verify';
  return undefined;
}
