/**
 * Where the revocation check sits on the wire, both directions:
 *  - inbound: right after the TLS handshake, on the verified client certificate; until the answer
 *    (OCSP may take a round trip) no request of that connection is served; a revoked certificate's
 *    connection is closed before any request is read and audited as a node-authentication failure;
 *  - outbound: in the connector, after the handshake and before the request is written; a revoked
 *    server certificate fails the call as a TLS failure (audited by peer-tls.ts).
 * This is a check on the verified peer certificate, beside the TLS options: the server's secure
 * context is not touched (Node's `crl` option would require a CRL for every trust anchor of the
 * context: OpenSSL then checks all of them, and peers of an anchor without one are refused).
 */
import type { Server } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response } from 'express';
import { auditNodeAuthenticationFailure } from '../../audit/gateway';
import type { AuditSink } from '../../audit/event';
import type { Logger } from '../../util/log';
import { connectionFacts } from '../identities';
import type { AuditThrottle } from '../server-guards';
import type { RevocationChecker, RevocationVerdict } from './checker';

const verdicts = new WeakMap<object, Promise<RevocationVerdict>>();

export function installInboundRevocation(
  server: Server,
  checker: RevocationChecker,
  o: { audit: AuditSink; log: Logger; throttle: AuditThrottle },
): void {
  const log = o.log.child({ component: 'revocation' });
  // First listener: the check starts before the HTTP layer sees the connection.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (!checker.configured) return;
    const presented = connectionFacts(socket).presented;
    if (!presented) return;
    const verdict = checker.check(presented.chain).catch((e: Error): RevocationVerdict => ({
      ok: false,
      reason: `revocation check failed: ${e.message}`,
    }));
    verdicts.set(socket, verdict);
    void verdict.then((v) => {
      if (v.ok) return;
      log.warn('client certificate refused: revoked or revocation unknown', {
        from: socket.remoteAddress,
        subject: presented.subject,
        reason: v.reason,
      });
      socket.destroy();
      const left = o.throttle.pass(`rev:${socket.remoteAddress ?? ''}|${presented.subject}`);
      if (left === undefined) return;
      auditNodeAuthenticationFailure(o.audit, {
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        certificateSubject: presented.subject,
        reason:
          `client certificate refused: ${v.reason}` +
          (left > 0 ? ` (${left} similar failures not recorded)` : ''),
      });
    });
  });
}

/** Express middleware: a request waits for its connection's revocation verdict. */
export function revocationGate(req: Request, res: Response, next: NextFunction): void {
  const v = verdicts.get(req.socket);
  if (!v) return next();
  void v.then((r) => (r.ok ? next() : res.destroy()));
}
