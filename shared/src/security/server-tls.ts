/**
 * The TLS material of a gateway, read from its settings, checked, and turned into the secure
 * context of its server — at start and at every reload (service/reload.ts), by the same functions.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { DEFAULT_CIPHERS } from '../outbound/client';
import { readPem, type ServiceSettings } from '../service/settings';

export type TlsSettings = NonNullable<ServiceSettings['tls']>;

/** Our certificate chain, key and trust anchors as read from the files the settings name. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** XCAI_TLS_CA (our own trust anchors, also for outbound calls). */
  ca: Buffer[];
}

/** Reads the files of the TLS settings (SettingsError naming a file that cannot be read). */
export function readTlsMaterial(s: TlsSettings): TlsMaterial {
  return { cert: readPem(s.cert), key: readPem(s.key), ca: s.ca.map(readPem) };
}

/**
 * The TLS server's secure context, as a function of the settings: our certificate chain and key,
 * the CAs a client certificate may chain to (XCAI_TLS_CA plus every trust anchor the directory
 * names), the protocol floor and the cipher list. The server is created with it and, on every
 * reload, `server.setSecureContext()` gets it anew — which replaces the WHOLE context, so whatever
 * the context must hold belongs here and nowhere else. A new input (e.g. certificate revocation
 * lists: `crl`) is one more field here, and both start and reload have it.
 */
export function serverSecureContextOptions(
  s: TlsSettings,
  m: TlsMaterial,
  trustAnchors: Buffer[],
): SecureContextOptions {
  return {
    cert: m.cert,
    key: m.key,
    ca: [...m.ca, ...trustAnchors],
    minVersion: s.minVersion === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2',
    ciphers: s.ciphers ?? DEFAULT_CIPHERS,
    honorCipherOrder: true,
  };
}

/**
 * Refuses material a server must not switch to: a key that does not belong to the certificate, a
 * certificate outside its validity period, or anything OpenSSL cannot load. Returns the leaf.
 */
export function checkServerTls(options: SecureContextOptions): X509Certificate {
  const leaf = new X509Certificate(options.cert as Buffer);
  if (!leaf.checkPrivateKey(createPrivateKey(options.key as Buffer)))
    throw new Error('the TLS key does not belong to the certificate');
  const now = Date.now();
  if (Date.parse(leaf.validFrom) > now)
    throw new Error(`the TLS certificate is not valid before ${leaf.validFrom}`);
  if (Date.parse(leaf.validTo) <= now) throw new Error(`the TLS certificate expired on ${leaf.validTo}`);
  createSecureContext(options); // throws on anything OpenSSL does not accept (e.g. a bad CA file)
  return leaf;
}
