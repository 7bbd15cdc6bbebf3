/**
 * Revocation test kit: a throwaway CA (deploy/certs/make-certs.sh) run with `openssl ca` for its
 * revocation database, CRLs it signs, and an OCSP responder answering from the same database with
 * `openssl ocsp` (one `openssl ocsp -index … -reqin … -respout …` per request; `openssl ocsp -port`
 * would listen on every interface, so the HTTP side is a small server on 127.0.0.1). Everything
 * lives in a temporary folder and is removed by `remove()`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makePki, type TestPki } from './certs';

export interface RevocationPki extends TestPki {
  /** Marks a certificate revoked in the CA's database. */
  revoke(name: string): void;
  /** Writes a CRL signed by the CA (PEM unless `der`), valid from `lastUpdate` to `nextUpdate` (YYYYMMDDHHMMSSZ). */
  writeCrl(
    file: string,
    o?: { der?: boolean; lastUpdate?: string; nextUpdate?: string; extensions?: string },
  ): string;
  /** An OCSP responder for the CA on 127.0.0.1. `requests` counts what it answered. */
  startOcsp(o?: {
    nextUpdateMinutes?: number;
  }): Promise<{ url: string; requests: () => number; stop(): Promise<void> }>;
}

const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
export const inHours = (h: number) => stamp(new Date(Date.now() + h * 3600_000));

export function makeRevocationPki(names: string[], label: string): RevocationPki {
  const pki = makePki(names, label);
  const work = mkdtempSync(join(pki.dir, 'ca-'));
  const cnf = join(work, 'ca.cnf');
  writeFileSync(join(work, 'index.txt'), '');
  writeFileSync(join(work, 'crlnumber'), '01\n');
  writeFileSync(
    cnf,
    `[ca]\ndefault_ca = x\n[x]\ndatabase = ${join(work, 'index.txt')}\ncrlnumber = ${join(work, 'crlnumber')}\n` +
      `default_md = sha256\ndefault_crl_days = 1\n`,
  );
  const caWith = (config: string, ...args: string[]) =>
    execFileSync(
      'openssl',
      ['ca', '-config', config, '-keyfile', join(pki.dir, 'ca.key'), '-cert', pki.ca, ...args],
      { stdio: 'pipe' },
    );
  const ca = (...args: string[]) => caWith(cnf, ...args);
  // Every certificate is in the database, so that OCSP can say "good" (and not "unknown").
  for (const n of names) ca('-valid', pki.cert(n.split(':')[0]));
  return {
    ...pki,
    revoke: (name) => void ca('-revoke', pki.cert(name)),
    writeCrl(file, o = {}) {
      const pem = join(work, 'crl.pem');
      // `extensions`: config lines of a [crl_ext] section (e.g. a critical issuingDistributionPoint).
      const config = o.extensions ? join(work, 'crl-ext.cnf') : cnf;
      if (o.extensions)
        writeFileSync(
          config,
          `${readFileSync(cnf, 'utf8')}crl_extensions = crl_ext\n[crl_ext]\n${o.extensions}\n`,
        );
      caWith(
        config,
        '-gencrl',
        '-out',
        pem,
        ...(o.lastUpdate ? ['-crl_lastupdate', o.lastUpdate] : []),
        ...(o.nextUpdate ? ['-crl_nextupdate', o.nextUpdate] : []),
      );
      if (o.der)
        execFileSync('openssl', ['crl', '-in', pem, '-outform', 'DER', '-out', file], { stdio: 'pipe' });
      else writeFileSync(file, readFileSync(pem));
      return file;
    },
    async startOcsp(o = {}) {
      let n = 0;
      const server: Server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const reqFile = join(work, `req-${++n}.der`);
          const respFile = join(work, `resp-${n}.der`);
          writeFileSync(reqFile, Buffer.concat(chunks));
          try {
            execFileSync(
              'openssl',
              [
                'ocsp',
                '-index',
                join(work, 'index.txt'),
                '-CA',
                pki.ca,
                '-rsigner',
                pki.ca,
                '-rkey',
                join(pki.dir, 'ca.key'),
                '-reqin',
                reqFile,
                '-respout',
                respFile,
                '-nmin',
                String(o.nextUpdateMinutes ?? 5),
              ],
              { stdio: 'pipe' },
            );
            res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(readFileSync(respFile));
          } catch {
            res.writeHead(500).end();
          }
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ocsp`,
        requests: () => n,
        stop: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      };
    },
  };
}
