/**
 * The operator CLI: `xcai validate`, `xcai probe` (against a real Responding Gateway over HTTP and
 * over mutual TLS with throwaway certificates) and `xcai report` (the ATNA module's report).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Action,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  type RunningGateway,
  type ServiceSettings,
} from '@xcai/shared';
import { main } from '@xcai/shared/src/cli/xcai';
import { PROBE_ENTRY_UUID } from '@xcai/shared/src/cli/probe';
import { createAuditSink } from '@xcai/shared/src/audit/sink';
import { sampleTransactionEvent } from '../support/audit';
import { directory, ROOT, startRG } from '../support/federation';

const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
const HOME_B = 'urn:oid:1.3.6.1.4.1.21367.13.70.102';
const HOME_T = 'urn:oid:1.3.6.1.4.1.21367.13.70.103';
const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';

let tmp: string;
let certs: string;
let registry: Server;
const registryRequests: string[] = [];
let rgHttp: RunningGateway;
let rgTls: RunningGateway;
let dirFile: string;

async function xcai(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s), env });
  return { code, out, err };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'xcai-cli-'));
  certs = join(tmp, 'certs');
  execFileSync('bash', [join(ROOT, 'deploy/certs/make-certs.sh'), certs, 'rg-b', 'probe-client'], {
    stdio: 'ignore',
  });
  // A registry that answers every stored query with an empty Success, remembering what it was asked.
  registry = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const xml = Buffer.concat(chunks).toString();
      registryRequests.push(xml);
      const id = /<wsa:MessageID>([^<]+)</.exec(xml)?.[1];
      res.writeHead(200, { 'content-type': 'application/soap+xml' });
      res.end(
        encodeEnvelope({
          action: Action.ITI18Response,
          relatesTo: id,
          body: encodeAdhocQueryResponse('Success', [], []),
          request: false,
        }),
      );
    });
  });
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
  const registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/registry`;
  const rgDir = (home: string) =>
    directory({
      homeCommunityId: home,
      name: 'B',
      local: { registry: { url: registryUrl } },
      communities: [{ homeCommunityId: HOME_A, name: 'A' }],
    });
  const tlsSettings: ServiceSettings = {
    directoryFile: '(inline)',
    host: '127.0.0.1',
    port: 0,
    mgmtPort: -1,
    audit: { transport: 'none' },
    maxRequestBytes: 4 * 1024 * 1024,
    tls: {
      cert: join(certs, 'rg-b.crt'),
      key: join(certs, 'rg-b.key'),
      ca: [join(certs, 'ca.crt')],
      clientAuth: 'required',
    },
  };
  rgHttp = await startRG(rgDir(HOME_B));
  rgTls = await startRG(rgDir(HOME_T), { settings: tlsSettings });
  dirFile = join(tmp, 'directory.yaml');
  writeFileSync(
    dirFile,
    [
      `homeCommunityId: ${HOME_A}`,
      'name: A',
      'communities:',
      `  - homeCommunityId: ${HOME_B}`,
      '    name: B over http',
      '    endpoints:',
      `      iti38: ${rgHttp.url}/iti38`,
      `  - homeCommunityId: ${HOME_T}`,
      '    name: T over mTLS',
      '    endpoints:',
      `      iti38: { url: "${rgTls.url.replace('127.0.0.1', 'localhost')}/iti38", timeoutMs: 5000 }`,
      '  - homeCommunityId: urn:oid:1.3.6.1.4.1.21367.13.70.104',
      '    name: no query endpoint',
      '',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await rgHttp.close();
  await rgTls.close();
  await new Promise<void>((r) => registry.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('xcai validate', () => {
  it('accepts a valid directory, with warnings for plain-HTTP peers', async () => {
    const r = await xcai(['validate', dirFile]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`OK ${dirFile}: ${HOME_A} (A); 3 remote communities`);
    expect(r.out).toMatch(
      /warning: communities\[0\] \(B over http\)\.endpoints\.iti38: http:\/\/127\.0\.0\.1:\d+\/iti38 is plain HTTP/,
    );
    expect(r.out).not.toMatch(/communities\[1\].*plain HTTP/);
  });

  it('names every problem of an invalid directory and exits 1', async () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(
      bad,
      'homeCommunityId: 1.2.3\ncommunities:\n  - name: x\n    endpoints: { iti99: "ftp://x" }\nbogus: 1\n',
    );
    const r = await xcai(['validate', dirFile, bad]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`INVALID ${bad}:`);
    expect(r.out).toContain('  - homeCommunityId: "1.2.3" is not a homeCommunityId');
    expect(r.out).toContain('  - communities[0].homeCommunityId: is required');
    expect(r.out).toContain('  - communities[0].endpoints.iti99: unknown endpoint');
    expect(r.out).toContain('  - bogus: unknown setting');
    const json = await xcai(['validate', '--json', bad, join(tmp, 'missing.yaml')]);
    expect(json.code).toBe(1);
    const results = JSON.parse(json.out) as { ok: boolean; problems: string[] }[];
    expect(results.map((x) => x.ok)).toEqual([false, false]);
    expect(results[1].problems[0]).toMatch(/cannot read the file/);
  });

  it('warns of unreadable CRL and consent files and of a break-glass switch-on that never expires', async () => {
    const f = join(tmp, 'disclosure.yaml');
    writeFileSync(
      f,
      [
        `homeCommunityId: ${HOME_B}`,
        'local: { registry: { url: "http://127.0.0.1:1/r" } }',
        'xua: { idpCertificates: [idp.pem] }',
        'consent: { source: file, file: nowhere.yaml, default: permit }',
        'communities:',
        `  - { homeCommunityId: ${HOME_A}, name: A, consent: { breakGlass: true } }`,
        'revocation:',
        '  - { trustAnchor: ca.pem, crls: [missing.crl] }',
        '',
      ].join('\n'),
    );
    const r = await xcai(['validate', f]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`warning: revocation[0].crls[0]: cannot read ${join(tmp, 'missing.crl')}`);
    expect(r.out).toContain(`warning: consent.file: cannot read ${join(tmp, 'nowhere.yaml')}`);
    expect(r.out).toContain(
      'warning: break-glass is switched on for A without breakGlass.until: it never expires',
    );
  });

  it('exits 2 on usage errors', async () => {
    expect((await xcai(['validate'])).code).toBe(2);
    expect((await xcai(['validate', '--strict', dirFile])).code).toBe(2);
    expect((await xcai([])).code).toBe(2);
    const r = await xcai(['frobnicate']);
    expect([r.code, r.err]).toEqual([2, expect.stringContaining('unknown command frobnicate')]);
  });
});

describe('xcai probe', () => {
  it('sends a harmless query over HTTP and reports latency, status and errors', async () => {
    registryRequests.length = 0;
    const r = await xcai(['probe', '--directory', dirFile, '--community', HOME_B]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`probe ${HOME_B} (B over http) at ${rgHttp.url}/iti38`);
    expect(r.out).toMatch(/latency: +\d+ ms/);
    expect(r.out).toMatch(/HTTP: +200/);
    expect(r.out).toMatch(/status: +Success, 0 object\(s\)/);
    expect(r.out).toMatch(/\nOK\n$/);
    expect(r.out).not.toContain('TLS');
    // The responding gateway asked its registry for an entryUUID that matches nothing: no patient named.
    expect(registryRequests).toHaveLength(1);
    expect(registryRequests[0]).toContain(PROBE_ENTRY_UUID);
    expect(registryRequests[0]).not.toContain('PatientId');
  });

  it('queries FindDocuments for --patient, and prints JSON with --json', async () => {
    registryRequests.length = 0;
    const r = await xcai([
      'probe',
      '--directory',
      dirFile,
      '--community',
      HOME_B,
      '--patient',
      PATIENT,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out) as {
      ok: boolean;
      query: string;
      status: string;
      httpStatus: number;
      latencyMs: number;
    };
    expect(res).toMatchObject({ ok: true, query: 'FindDocuments', status: 'Success', httpStatus: 200 });
    expect(res.latencyMs).toBeGreaterThanOrEqual(0);
    expect(registryRequests[0]).toContain(PATIENT.replace(/&/g, '&amp;'));
  });

  it('probes over mutual TLS and shows the peer certificate', async () => {
    const r = await xcai([
      'probe',
      '--directory',
      dirFile,
      '--community',
      HOME_T,
      '--tls-cert',
      join(certs, 'probe-client.crt'),
      '--tls-key',
      join(certs, 'probe-client.key'),
      '--tls-ca',
      join(certs, 'ca.crt'),
    ]);
    expect(r.code).toBe(0);
    const cert = new X509Certificate(readFileSync(join(certs, 'rg-b.crt')));
    expect(r.out).toMatch(/TLS: +verified, TLSv1\.[23]/);
    expect(r.out).toContain('subject:  O=xcai test, CN=rg-b');
    expect(r.out).toMatch(/issuer: +O=xcai test, CN=xcai demo CA/);
    expect(r.out).toContain(
      `valid:    ${new Date(cert.validFrom).toISOString()} to ${new Date(cert.validTo).toISOString()}`,
    );
    expect(r.out).toContain(`sha256:   ${cert.fingerprint256}`);
    expect(r.out).toMatch(/status: +Success/);
  });

  it('takes the client certificate and trust anchors from the gateway environment', async () => {
    const env = {
      XCAI_TLS_CERT: join(certs, 'probe-client.crt'),
      XCAI_TLS_KEY: join(certs, 'probe-client.key'),
      XCAI_TLS_CA: join(certs, 'ca.crt'),
      XCAI_DIRECTORY: dirFile,
    };
    const r = await xcai(['probe', '--community', HOME_T], env);
    expect([r.code, r.out]).toEqual([0, expect.stringContaining('CN=rg-b')]);
  });

  it('fails verification against the wrong trust anchors (never skips it)', async () => {
    const other = join(tmp, 'other-ca');
    execFileSync('bash', [join(ROOT, 'deploy/certs/make-certs.sh'), other, 'x'], { stdio: 'ignore' });
    const r = await xcai([
      'probe',
      '--directory',
      dirFile,
      '--community',
      HOME_T,
      '--tls-cert',
      join(certs, 'probe-client.crt'),
      '--tls-key',
      join(certs, 'probe-client.key'),
      '--tls-ca',
      join(other, 'ca.crt'),
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/TLS: +FAILED: .*certificate/);
    expect(r.out).toMatch(/failure: +refused: TLS failure/);
    expect(r.out).toMatch(/\nFAILED\n$/);
  });

  it('reports a refused client certificate', async () => {
    const r = await xcai([
      'probe',
      '--directory',
      dirFile,
      '--community',
      HOME_T,
      '--tls-ca',
      join(certs, 'ca.crt'),
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/failure: /);
  });

  it('explains communities it cannot probe, and usage errors', async () => {
    let r = await xcai(['probe', '--directory', dirFile, '--community', 'urn:oid:1.2.3.4']);
    expect([r.code, r.out]).toEqual([
      1,
      expect.stringContaining('unknown-community: urn:oid:1.2.3.4 is not in'),
    ]);
    r = await xcai(['probe', '--directory', dirFile, '--community', 'urn:oid:1.3.6.1.4.1.21367.13.70.104']);
    expect([r.code, r.out]).toEqual([1, expect.stringContaining('has no iti38 endpoint')]);
    expect((await xcai(['probe', '--community', HOME_B])).code).toBe(2);
    expect(
      (await xcai(['probe', '--directory', dirFile, '--community', HOME_B, '--tls-cert', 'x'])).code,
    ).toBe(2);
    expect(
      (await xcai(['probe', '--directory', dirFile, '--community', HOME_B, '--timeout', 'soon'])).code,
    ).toBe(2);
    r = await xcai(['probe', '--directory', join(tmp, 'bad.yaml'), '--community', HOME_B]);
    expect([r.code, r.err]).toEqual([1, expect.stringContaining('is not valid')]);
  });
});

describe('xcai probe --all', () => {
  /**
   * Five ITI-38 responders that answer after 150 ms and count the requests in flight across all of
   * them, one that never answers, and the real Responding Gateway of B.
   */
  let inFlight = 0;
  let maxInFlight = 0;
  const asked: string[] = [];
  const servers: Server[] = [];
  let allFile: string;
  const home = (i: number) => `urn:oid:1.3.6.1.4.1.21367.13.70.${150 + i}`;

  beforeAll(async () => {
    const listen = async (answer: boolean, i: number) => {
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          asked.push(home(i));
          if (!answer) return; // held until the prober gives up
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          const id = /<wsa:MessageID>([^<]+)</.exec(Buffer.concat(chunks).toString())?.[1];
          setTimeout(() => {
            inFlight--;
            res.writeHead(200, { 'content-type': 'application/soap+xml' });
            res.end(
              encodeEnvelope({
                action: Action.ITI38Response,
                relatesTo: id,
                body: encodeAdhocQueryResponse('Success', [], []),
                request: false,
              }),
            );
          }, 150);
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/iti38`;
    };
    const urls = [];
    for (let i = 0; i < 5; i++) urls.push(await listen(true, i));
    const silent = await listen(false, 5);
    allFile = join(tmp, 'all.yaml');
    writeFileSync(
      allFile,
      [
        `homeCommunityId: ${HOME_A}`,
        'communities:',
        ...urls.map(
          (u, i) => `  - { homeCommunityId: "${home(i)}", name: R${i}, endpoints: { iti38: "${u}" } }`,
        ),
        `  - { homeCommunityId: "${home(5)}", name: silent, endpoints: { iti38: "${silent}" } }`,
        `  - { homeCommunityId: "${HOME_B}", name: B, endpoints: { iti38: "${rgHttp.url}/iti38" } }`,
        '  - { homeCommunityId: "urn:oid:1.3.6.1.4.1.21367.13.70.104", name: no query endpoint }',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it.each([1, 2, 4])(
    'probes every entry with at most %i in flight, a silent one bounded by the timeout',
    async (n) => {
      maxInFlight = 0;
      asked.length = 0;
      const t0 = Date.now();
      const r = await xcai([
        'probe',
        '--directory',
        allFile,
        '--all',
        '--concurrency',
        String(n),
        '--timeout',
        '1000',
      ]);
      const took = Date.now() - t0;
      expect(r.code).toBe(1);
      const lines = r.out.trim().split('\n');
      expect(lines).toHaveLength(8);
      for (let i = 0; i < 5; i++)
        expect(lines).toContainEqual(
          expect.stringMatching(new RegExp(`^OK +${home(i)} \\(R${i}\\) \\d+ ms: Success, 0 object\\(s\\)$`)),
        );
      expect(lines).toContainEqual(expect.stringMatching(/^OK +.* \(B\) \d+ ms: Success/));
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^FAILED ${home(5)} \\(silent\\) \\d+ ms: timeout: `)),
      );
      expect(lines[7]).toMatch(
        new RegExp(
          `^probed 7 communities \\(${n} at a time\\): 6 OK, 1 failed \\(timeout 1\\); latency of the answers p50 \\d+ ms`,
        ),
      );
      expect(new Set(asked).size).toBe(6);
      // Bounded, and used: the five responders see at most n (and, with room, more than one) at once.
      expect(maxInFlight).toBeLessThanOrEqual(n);
      expect(maxInFlight).toBe(Math.min(n, 5));
      // The silent community does not hold up the run beyond its timeout (generous bound).
      expect(took).toBeLessThan(20_000);
    },
  );

  it('prints JSON with a summary, and refuses --concurrency without --all', async () => {
    const r = await xcai(['probe', '--directory', allFile, '--all', '--json', '--timeout', '1000']);
    const j = JSON.parse(r.out) as { results: { ok: boolean }[]; summary: { ok: number; failed: number } };
    expect(j.results).toHaveLength(7);
    expect(j.summary).toMatchObject({ probed: 7, ok: 6, failed: 1, failures: { timeout: 1 } });
    expect(
      (await xcai(['probe', '--directory', allFile, '--community', HOME_B, '--concurrency', '2'])).code,
    ).toBe(2);
    expect((await xcai(['probe', '--directory', allFile, '--all', '--community', HOME_B])).code).toBe(2);
    expect((await xcai(['probe', '--directory', allFile, '--all', '--concurrency', '0'])).code).toBe(2);
  });
});

describe('xcai report', () => {
  it('prints the per-patient access report of the ATNA module', async () => {
    const spool = join(tmp, 'spool');
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const sink = createAuditSink({
      transport: 'none',
      spoolDir: spool,
      source: { auditSourceId: 'gw-a' },
      logger: quiet,
    });
    sink.record(sampleTransactionEvent('ITI-38', 'requester', 'success', 10, PATIENT));
    sink.record(sampleTransactionEvent('ITI-38', 'requester', 'success', 11, 'OTHER^^^&1.2.3&ISO'));
    await sink.close();
    const r = await xcai(['report', '--patient', PATIENT, '--json', spool]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as unknown[];
    expect(rows).toHaveLength(1);
    const text = await xcai(['report', '--patient', PATIENT, spool]);
    expect(text.out).toContain(`Access history of patient ${PATIENT}`);
    expect((await xcai(['report', '--patient', PATIENT])).code).toBe(2);
  });
});
