/**
 * Certificate revocation (issue 18, R5), gateways as processes: CRLs and OCSP per trust anchor for
 * the certificates peers present, both directions; a revoked peer's connection is refused before
 * any request and audited as a node-authentication failure; CRL files are reread when they change
 * and refused past their nextUpdate unless the operator allows it; OCSP answers are cached; our own
 * certificate's OCSP response is stapled. The CA, its CRLs and its OCSP responder (`openssl ocsp`)
 * are made by the test (test/support/revocation.ts).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { Action, decodeAdhocQueryResponse, encodeFindDocumentsRequest } from '@xcai/shared';
import { certId, verifyOcspResponse } from '@xcai/shared/src/security/revocation';
import type { Agent } from 'undici';
import { soapCall } from '../support/client';
import { demoSeeds, spawnCommunity, type CommunityProcess } from '../support/federation';
import { gatewayEnv, igDirectoryJson, rgDirectoryJson, spoolRecords } from '../support/gateways';
import { spawnGateway, type GatewayProcess } from '../support/processes';
import { inHours, makeRevocationPki, type RevocationPki } from '../support/revocation';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
const SAN = (n: string) => `DNS:${n},DNS:localhost,IP:127.0.0.1`;

let a: RevocationPki; // community A's CA (the initiating side)
let b: RevocationPki; // community B's CA (the responding side)
let refB: CommunityProcess;
const running: GatewayProcess[] = [];
const clients: Agent[] = [];
const ocspStops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const seeds = await demoSeeds();
  refB = await spawnCommunity([seeds.B]);
  // Several certificates of community A's gateway (all name gw-a): good ones, and ones to revoke.
  a = makeRevocationPki(
    ['gw-a', `gwa-revoked:${SAN('gw-a')}`, `gwa-later:${SAN('gw-a')}`, `gwa-other:${SAN('gw-a')}`],
    'rev-a',
  );
  b = makeRevocationPki(['gw-b', `gwb-revoked:${SAN('gw-b')}`], 'rev-b');
  a.revoke('gwa-revoked');
  b.revoke('gwb-revoked');
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((g) => g.stop()));
  await Promise.all(ocspStops.map((s) => s()));
  await Promise.all(clients.map((c) => c.close()));
  await refB?.stop();
  a?.remove();
  b?.remove();
});

/** A responding gateway of B (certificate `cert` of b) accepting A's gateway, with `revocation`. */
async function startRg(revocation: unknown[], cert = 'gw-b', env: Record<string, string> = {}) {
  const e = gatewayEnv(b, cert, 'required', { XCAI_TLS_CA: `${b.ca},${a.ca}`, ...env });
  const g = await spawnGateway(
    'responding',
    rgDirectoryJson(refB, { homeCommunityId: HOME_A, name: 'A', certName: 'gw-a', ca: a.ca }, { revocation }),
    e.env,
  );
  running.push(g);
  return { g, spool: e.spool };
}

const as = (cert: string) => {
  const c = a.client(cert, { extraCa: [b.ca] });
  clients.push(c);
  return c;
};

async function query(url: string, cert: string): Promise<'served' | string> {
  try {
    const r = await soapCall(`${url}/iti38`, Action.ITI38, encodeFindDocumentsRequest(PATIENT), {
      dispatcher: as(cert),
    });
    return r.status === 200 &&
      decodeAdhocQueryResponse(r.envelope.doc, r.envelope.payload).status === 'Success'
      ? 'served'
      : `HTTP ${r.status}`;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

const nodeAuthFailures = (spool: string, n: number, what: RegExp) =>
  spoolRecords(
    spool,
    (vs) =>
      vs.filter((v) => v.eventTypes.includes('Node Authentication') && what.test(v.outcomeDescription ?? ''))
        .length >= n,
  );

describe('revocation of client certificates at the responding gateway', () => {
  it('CRL: refuses a revoked certificate before any request, audits it, and rereads the CRL file', async () => {
    const crl = a.writeCrl(join(a.dir, 'a.crl'));
    const { g, spool } = await startRg([{ trustAnchor: a.ca, crls: [crl] }]);
    expect(await query(g.url, 'gw-a')).toBe('served');
    expect(await query(g.url, 'gwa-revoked')).toMatch(/^refused/);
    const views = await nodeAuthFailures(spool, 1, /revoked \(CRL/);
    expect(views.find((v) => /revoked \(CRL/.test(v.outcomeDescription ?? ''))?.outcome).toBe(8);
    // No transaction of the revoked certificate reached the gateway.
    expect(views.filter((v) => v.transaction === 'ITI-38')).toHaveLength(1);

    expect(await query(g.url, 'gwa-later')).toBe('served');
    a.revoke('gwa-later');
    await new Promise((r) => setTimeout(r, 1100)); // the file is looked at once a second at most
    a.writeCrl(crl, { der: true }); // same file, now DER, listing gwa-later too
    expect(await query(g.url, 'gwa-later')).toMatch(/^refused/);
    expect(await query(g.url, 'gw-a')).toBe('served');
    // Throttled per address and certificate: gwa-later's refusal is a record of its own.
    const after = await nodeAuthFailures(spool, 2, /revoked \(CRL/);
    expect(
      after.some(
        (v) =>
          v.eventTypes.includes('Security Configuration') && /CRL reloaded/.test(v.outcomeDescription ?? ''),
      ),
    ).toBe(true);
  });

  it('CRL past its nextUpdate: every certificate refused, unless the operator allows it', async () => {
    const old = a.writeCrl(join(a.dir, 'old.crl'), { lastUpdate: inHours(-48), nextUpdate: inHours(-24) });
    const strict = await startRg([{ trustAnchor: a.ca, crls: [old] }]);
    const lenient = await startRg([{ trustAnchor: a.ca, crls: [old], allowExpiredCrl: true }]);
    expect(await query(strict.g.url, 'gw-a')).toMatch(/^refused/);
    await nodeAuthFailures(strict.spool, 1, /CRL of .* expired/);
    expect(await query(lenient.g.url, 'gw-a')).toBe('served');
    expect(await query(lenient.g.url, 'gwa-revoked')).toMatch(/^refused/);
    expect(lenient.g.output.join('\n')).toMatch(/using a CRL past its nextUpdate/);
  });

  it('OCSP: good accepted, revoked refused, answers cached until nextUpdate, no answer → refused', async () => {
    const ocsp = await a.startOcsp({ nextUpdateMinutes: 10 });
    ocspStops.push(ocsp.stop);
    const { g, spool } = await startRg([{ trustAnchor: a.ca, ocsp: { url: ocsp.url, timeoutMs: 2000 } }]);
    expect(await query(g.url, 'gw-a')).toBe('served');
    expect(await query(g.url, 'gwa-revoked')).toMatch(/^refused/);
    await nodeAuthFailures(spool, 1, /revoked \(OCSP/);
    const asked = ocsp.requests();
    expect(await query(g.url, 'gw-a')).toBe('served');
    expect(ocsp.requests()).toBe(asked); // from the cache

    await ocsp.stop();
    expect(await query(g.url, 'gw-a')).toBe('served'); // still cached
    expect(await query(g.url, 'gwa-other')).toMatch(/^refused/); // never asked, responder gone
    await nodeAuthFailures(spool, 1, /revocation status unknown/);
  });
});

describe('revocation of server certificates, and stapling', () => {
  it('the initiating gateway refuses a responding gateway whose certificate is revoked, and audits it', async () => {
    const crl = b.writeCrl(join(b.dir, 'b.crl'));
    const good = await startRg([], 'gw-b');
    const revoked = await startRg([], 'gwb-revoked');
    const ig = async (rgUrl: string) => {
      const e = gatewayEnv(a, 'gw-a', 'optional', { XCAI_TLS_CA: `${a.ca},${b.ca}` });
      const g = await spawnGateway(
        'initiating',
        igDirectoryJson(
          { homeCommunityId: refB.homeCommunityId, url: rgUrl, certName: 'gw-b', ca: b.ca },
          { revocation: [{ trustAnchor: b.ca, crls: [crl] }] },
        ),
        e.env,
      );
      running.push(g);
      return { g, spool: e.spool };
    };
    const toGood = await ig(good.g.url);
    const toRevoked = await ig(revoked.g.url);
    const ask = async (url: string) => {
      const r = await soapCall(`${url}/iti18`, Action.ITI18, encodeFindDocumentsRequest(PATIENT), {
        dispatcher: as('gw-a'),
      });
      return decodeAdhocQueryResponse(r.envelope.doc, r.envelope.payload);
    };
    const ok = await ask(toGood.g.url);
    expect(ok.errors).toEqual([]);
    expect(ok.objects.length).toBeGreaterThan(0);
    const refused = await ask(toRevoked.g.url);
    expect(refused.objects).toHaveLength(0);
    expect(refused.errors.map((e) => e.errorCode)).toEqual(['XDSUnavailableCommunity']);
    await nodeAuthFailures(toRevoked.spool, 1, /revoked \(CRL/);
  });

  it('staples an OCSP response for its own certificate', async () => {
    const ocsp = await b.startOcsp();
    ocspStops.push(ocsp.stop);
    const { g } = await startRg([], 'gw-b', { XCAI_TLS_OCSP_STAPLING: 'on', XCAI_TLS_OCSP_URL: ocsp.url });
    const port = Number(new URL(g.url).port);
    const stapled = await new Promise<Buffer | null>((resolve, reject) => {
      // requestOCSP is a TLSSocket option tls.connect passes on (not in ConnectionOptions' type).
      const s = connect({
        host: '127.0.0.1',
        port,
        servername: 'gw-b',
        ca: [readFileSync(b.ca)],
        cert: readFileSync(a.cert('gw-a')),
        key: readFileSync(a.key('gw-a')),
        ...({ requestOCSP: true } as ConnectionOptions),
      });
      let response: Buffer | null = null;
      s.once('OCSPResponse', (r: Buffer) => (response = r));
      s.once('secureConnect', () => {
        s.end();
        resolve(response);
      });
      s.once('error', reject);
    });
    expect(stapled).not.toBeNull();
    const own = new X509Certificate(readFileSync(b.cert('gw-b')));
    const ca = new X509Certificate(readFileSync(b.ca));
    expect(verifyOcspResponse(stapled as Buffer, certId(own, ca), ca).status).toBe('good');
  });
});
