/**
 * OCSP stapling of our own server certificate (TLS Certificate Status Request, RFC 6066 §8), as
 * far as Node allows it: the server's `OCSPRequest` event hands us our certificate and its
 * issuer when a client asks; we answer with a response from our CA's responder (the certificate's
 * AIA OCSP URL, or XCAI_TLS_OCSP_URL), verified before it is stapled and kept until its
 * nextUpdate. A handshake never waits long for it: without a fresh response in 2 s, nothing is
 * stapled (the client asks the responder itself). Node cannot staple for client certificates.
 */
import { X509Certificate } from 'node:crypto';
import type { Server } from 'node:https';
import type { Endpoint } from '../../directory/types';
import type { Outbound } from '../../outbound/client';
import type { Logger } from '../../util/log';
import { certId, encodeOcspRequest, verifyOcspResponse } from './ocsp';

const WAIT_MS = 2_000;
const NO_NEXT_UPDATE_MS = 60_000;

/** The OCSP responder named in a certificate's Authority Information Access. */
export function aiaOcspUrl(cert: X509Certificate): string | undefined {
  const m = /OCSP - URI:(http:\/\/\S+)/.exec(cert.infoAccess ?? '');
  return m?.[1];
}

export function installOcspStapling(
  server: Server,
  o: { outbound: Outbound; log: Logger; url?: string },
): void {
  const log = o.log.child({ component: 'ocsp-stapling' });
  // Kept for the certificate it was fetched for: a reloaded certificate gets its own response.
  let cached: { cert: Buffer; der: Buffer; until: number } | undefined;
  let pending: Promise<Buffer | undefined> | undefined;

  const refresh = (certDer: Buffer, issuerDer: Buffer): Promise<Buffer | undefined> => {
    pending ??= (async () => {
      const cert = new X509Certificate(certDer);
      const issuer = new X509Certificate(issuerDer);
      const url = o.url ?? aiaOcspUrl(cert);
      if (!url) throw new Error('the certificate names no OCSP responder and XCAI_TLS_OCSP_URL is not set');
      const endpoint: Endpoint = { url, timeoutMs: 5_000, maxConcurrent: 2, maxResponseBytes: 64 * 1024 };
      const id = certId(cert, issuer);
      const res = await o.outbound.post({
        endpoint,
        contentType: 'application/ocsp-request',
        body: encodeOcspRequest(id),
        signal: AbortSignal.timeout(endpoint.timeoutMs),
        headersTimeoutMs: endpoint.timeoutMs,
        permit: (u) => u === url,
      });
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      const der = Buffer.concat(chunks);
      const answer = verifyOcspResponse(der, id, issuer);
      cached = { cert: certDer, der, until: answer.nextUpdate?.getTime() ?? Date.now() + NO_NEXT_UPDATE_MS };
      log.info('OCSP response for our certificate fetched', { status: answer.status, url });
      return der;
    })()
      .catch((e: Error) => {
        log.warn('no OCSP response to staple', { reason: e.message });
        return undefined;
      })
      .finally(() => (pending = undefined));
    return pending;
  };

  server.on('OCSPRequest', (certificate, issuer, callback) => {
    if (cached && cached.until > Date.now() && cached.cert.equals(certificate))
      return callback(null, cached.der);
    if (!issuer || issuer.length === 0) return callback(null, null);
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      callback(null, null);
    }, WAIT_MS);
    void refresh(certificate, issuer).then((der) => {
      if (done) return;
      clearTimeout(timer);
      callback(null, der ?? null);
    });
  });
}
