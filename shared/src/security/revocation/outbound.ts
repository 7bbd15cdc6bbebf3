/**
 * Revocation on outbound connections: the undici connector checks the server's certificate chain
 * after the handshake and before the request is written (see inbound.ts for the other direction).
 */
import type { TLSSocket } from 'node:tls';
import { buildConnector } from 'undici';
import { presentedChain, subjectString } from '../certificates';
import type { RevocationChecker } from './checker';

/**
 * An undici connector that checks the server's certificate chain after the handshake (the usual
 * verification, host name and identity checks having passed already).
 */
export function revocationConnector(
  options: buildConnector.BuildOptions | buildConnector.connector,
  checker: RevocationChecker,
): buildConnector.connector {
  const connect = typeof options === 'function' ? options : buildConnector(options);
  return (opts, callback) =>
    connect(opts, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no socket'), null);
      if (!checker.configured) return callback(null, socket);
      const tls = socket as TLSSocket;
      const cert = tls.getPeerCertificate?.(true);
      if (!cert || Object.keys(cert).length === 0) return callback(null, socket);
      checker.check(presentedChain(cert)).then(
        (v) => {
          if (v.ok) return callback(null, socket);
          socket.destroy();
          const e = new Error(`server certificate ${subjectString(cert)} refused: ${v.reason}`) as Error & {
            code: string;
          };
          e.code = 'ERR_TLS_CERT_REVOKED';
          callback(e, null);
        },
        (e: Error) => {
          socket.destroy();
          callback(e, null);
        },
      );
    });
}
