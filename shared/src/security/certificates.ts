/**
 * Certificate helpers for peer identity: the names a certificate asserts, PEM bundles, and whether a
 * presented chain leads to one of a peer's trust anchors. Chain validity itself (signatures up to a
 * trusted root, dates, key usage) is OpenSSL's job during the handshake; this only answers "which
 * of the configured anchors does it hang from", so that an anchor of community B cannot vouch for
 * a certificate that claims to be community C.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';

/** Subject CN and subjectAltName DNS / URI / IP values, in that order, without duplicates. */
export function certificateNames(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'>): string[] {
  const cn = cert.subject?.CN as string | string[] | undefined;
  const sans = splitSubjectAltName(cert.subjectaltname ?? '');
  const names = [...(cn === undefined ? [] : Array.isArray(cn) ? cn : [cn]), ...sans];
  return [...new Set(names.filter((n) => n.length > 0))];
}

/** The names our own certificate (first in a PEM file) asserts: subject CN and subjectAltName values. */
export function ownCertificateNames(pem: string | Buffer): string[] {
  const [cert] = parsePemCertificates(pem, 'own certificate');
  if (!cert) return [];
  const cn = cert.subject
    .split('\n')
    .filter((l) => l.startsWith('CN='))
    .map((l) => l.slice(3));
  return [...new Set([...cn, ...splitSubjectAltName(cert.subjectAltName ?? '')])];
}

/** `DNS:a, IP Address:127.0.0.1, URI:urn:x` → values of the DNS, URI and IP entries. */
export function splitSubjectAltName(san: string): string[] {
  const out: string[] = [];
  // Values may be quoted (Node quotes values with commas); split on ", " outside quotes.
  for (const raw of san.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
    const m = /^\s*(DNS|URI|IP Address):(.*)$/.exec(raw);
    if (!m) continue;
    let v = m[2].trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    if (v) out.push(v);
  }
  return out;
}

/** Subject of a certificate as `K=V,K=V` (as the audit records show it). */
export function subjectString(cert: Pick<PeerCertificate, 'subject'>): string {
  return Object.entries(cert.subject ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(',');
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of the PEM text (a bundle may hold several). */
export function parsePemCertificates(pem: string | Buffer, source = 'PEM'): X509Certificate[] {
  const blocks = String(pem).match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new Error(`${source} holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new Error(`${source}: certificate ${i + 1} is not readable: ${(e as Error).message}`, {
        cause: e,
      });
    }
  });
}

/** Reads PEM files; the error names the file. */
export function readCertificateFiles(files: readonly string[]): { pem: Buffer; certs: X509Certificate[] }[] {
  return files.map((f) => {
    let pem: Buffer;
    try {
      pem = readFileSync(f);
    } catch (e) {
      throw new Error(`cannot read ${f}: ${(e as Error).message}`, { cause: e });
    }
    return { pem, certs: parsePemCertificates(pem, f) };
  });
}

/** The chain a peer presented, leaf first (from `getPeerCertificate(true)`), as X509Certificate. */
export function presentedChain(
  leaf: DetailedPeerCertificate | PeerCertificate | undefined,
): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  let c = leaf as DetailedPeerCertificate | undefined;
  while (c && c.raw && !seen.has(c.fingerprint256) && out.length < 10) {
    seen.add(c.fingerprint256);
    try {
      out.push(new X509Certificate(c.raw));
    } catch {
      break;
    }
    c = c.issuerCertificate;
  }
  return out;
}

/**
 * True when one certificate of `chain` is one of `anchors`, or was issued and signed by one of
 * them. `chain` was verified by TLS already; this decides which anchor it belongs to.
 */
export function chainsTo(chain: readonly X509Certificate[], anchors: readonly X509Certificate[]): boolean {
  for (const c of chain) {
    for (const a of anchors) {
      if (c.fingerprint256 === a.fingerprint256) return true;
      try {
        if (c.checkIssued(a) && c.verify(a.publicKey)) return true;
      } catch {
        // a key type verify() cannot use: not this anchor
      }
    }
  }
  return false;
}
