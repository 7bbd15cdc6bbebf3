/**
 * Certificates and directory change without downtime (issue 12, item 8). A responding gateway
 * process with mutual TLS: its certificate is rotated (new key, same CA, written as cert-manager
 * does: the files replaced) and picked up by the file watch; its directory is edited and picked up
 * on SIGHUP. A query in flight across both reloads completes; new connections see the new
 * certificate; the new community is served. A bad certificate file and a bad directory file are
 * refused: the previous configuration stays, the log and /readyz say why, and it goes on serving.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { request } from 'undici';
import { Action, encodeEnvelope, encodeFindDocumentsRequest } from '@xcai/shared';
import { makePki, postWith, type TestPki } from '../support/certs';
import { demoSeeds, ROOT, spawnCommunity, type CommunityProcess } from '../support/federation';
import { spawnGateway, type GatewayProcess } from '../support/processes';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HOME_R = 'urn:oid:1.3.6.1.4.1.21367.13.70.352';
const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.351';
const HOME_C = 'urn:oid:1.3.6.1.4.1.21367.13.70.353';

let pki: TestPki;
let ref: CommunityProcess;
let rg: GatewayProcess;
let live: string;
let rotated: string;
let directory: Record<string, unknown>;

const community = (home: string, name: string) => ({
  homeCommunityId: home,
  name,
  identity: { trustAnchors: [pki.ca], names: [name.toLowerCase()] },
});

/** Replaces a file the way a Secret volume update does: a new file renamed over the old one. */
function replace(file: string, content: Buffer | string): void {
  writeFileSync(`${file}.new`, content);
  renameSync(`${file}.new`, file);
}

beforeAll(async () => {
  pki = makePki(['gw-r', 'gw-a', 'gw-c'], 'reload');
  // The rotated certificate: same name, new key, same CA (make-certs.sh reuses the CA it finds).
  rotated = join(pki.dir, 'rotated');
  mkdirSync(rotated);
  copyFileSync(pki.ca, join(rotated, 'ca.crt'));
  copyFileSync(join(pki.dir, 'ca.key'), join(rotated, 'ca.key'));
  execFileSync(join(ROOT, 'deploy/certs/make-certs.sh'), [rotated, 'gw-r'], { stdio: 'pipe' });
  // What the gateway reads: its "mounted" certificate and key.
  live = join(pki.dir, 'live');
  mkdirSync(live);
  copyFileSync(pki.cert('gw-r'), join(live, 'tls.crt'));
  copyFileSync(pki.key('gw-r'), join(live, 'tls.key'));
  // A slow registry: a query stays in flight while the configuration changes.
  ref = await spawnCommunity([(await demoSeeds()).A], { delayMs: 2_000 });
  directory = {
    homeCommunityId: HOME_R,
    name: 'R',
    local: { registry: { url: ref.registry, timeoutMs: 15_000 } },
    communities: [community(HOME_A, 'GW-A')],
  };
  rg = await spawnGateway('responding', directory, {
    XCAI_TLS_CERT: join(live, 'tls.crt'),
    XCAI_TLS_KEY: join(live, 'tls.key'),
    XCAI_TLS_CA: pki.ca,
    XCAI_TLS_CLIENT_AUTH: 'required',
    XCAI_RELOAD_POLL_MS: '200',
  });
}, 60_000);

afterAll(async () => {
  await rg?.stop();
  await ref?.stop();
  pki?.remove();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const query = () =>
  encodeEnvelope({ action: Action.ITI38, body: encodeFindDocumentsRequest(PATIENT), request: true });
const statusOf = (r: Awaited<ReturnType<typeof postWith>>) => ('error' in r ? r.error.message : r.status);

/** The certificate a NEW connection to the gateway is served (SHA-256 fingerprint). */
function servedCertificate(): Promise<string> {
  const { hostname, port } = new URL(rg.url);
  return new Promise((resolve, reject) => {
    const s = connect({
      host: hostname,
      port: Number(port),
      ca: readFileSync(pki.ca),
      cert: readFileSync(pki.cert('gw-a')),
      key: readFileSync(pki.key('gw-a')),
      servername: 'localhost',
    });
    s.once('secureConnect', () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}

const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

async function readyz(): Promise<{
  status: number;
  body: { status: string; checks: Record<string, { status: string; detail?: { error?: string } }> };
}> {
  const r = await request(`${rg.mgmtUrl}/readyz`);
  return { status: r.statusCode, body: (await r.body.json()) as never };
}

/** Waits for the n-th log line matching `re` (counting from `from`). */
async function logged(re: RegExp, from: number, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const hit = rg.output.slice(from).find((l) => re.test(l));
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no log line ${re} in: ${rg.output.slice(from).join('\n')}`);
    await sleep(50);
  }
}

it('rotates the certificate (file watch) and applies an edited directory (SIGHUP) while a query is in flight', async () => {
  expect(await servedCertificate()).toBe(fingerprint(pki.cert('gw-r')));
  const refusedBefore = await postWith(pki.client('gw-c'), `${rg.url}/iti38`, query());
  expect(statusOf(refusedBefore)).toBe(400);
  expect((refusedBefore as { text: string }).text).toContain('does not belong to a community');

  const inFlight = postWith(pki.client('gw-a'), `${rg.url}/iti38`, query());
  await sleep(300);
  let mark = rg.output.length;
  replace(join(live, 'tls.key'), readFileSync(join(rotated, 'gw-r.key')));
  replace(join(live, 'tls.crt'), readFileSync(join(rotated, 'gw-r.crt')));
  await logged(/configuration reloaded/, mark);

  mark = rg.output.length;
  replace(
    rg.directoryFile,
    JSON.stringify({ ...directory, communities: [community(HOME_A, 'GW-A'), community(HOME_C, 'GW-C')] }),
  );
  rg.proc.kill('SIGHUP');
  await logged(/configuration reloaded/, mark);

  const done = await inFlight;
  expect(statusOf(done)).toBe(200);
  expect((done as { text: string }).text).toContain('ExtrinsicObject');
  expect(await servedCertificate()).toBe(fingerprint(join(rotated, 'gw-r.crt')));
  expect(statusOf(await postWith(pki.client('gw-c'), `${rg.url}/iti38`, query()))).toBe(200);
  const ready = await readyz();
  expect(ready.status).toBe(200);
  expect(ready.body.checks.configuration.status).toBe('ok');
  expect(rg.proc.exitCode).toBeNull();
}, 60_000);

it('refuses a certificate that does not match its key and a broken directory: the previous configuration stays, /readyz says why', async () => {
  const good = fingerprint(join(rotated, 'gw-r.crt'));
  let mark = rg.output.length;
  replace(join(live, 'tls.crt'), readFileSync(pki.cert('gw-a'))); // another node's certificate: not our key
  const line = await logged(/configuration reload refused/, mark);
  expect(line).toMatch(/key does not belong to the certificate/);
  expect(line).toMatch(/"level":"error"/);
  let ready = await readyz();
  expect(ready.status).toBe(200); // still serving, with the previous configuration
  expect(ready.body.status).toBe('degraded');
  expect(ready.body.checks.configuration.detail?.error).toMatch(/key does not belong/);
  expect(await servedCertificate()).toBe(good);
  expect(statusOf(await postWith(pki.client('gw-a'), `${rg.url}/iti38`, query()))).toBe(200);

  mark = rg.output.length;
  replace(join(live, 'tls.crt'), readFileSync(join(rotated, 'gw-r.crt')));
  await logged(/configuration reloaded/, mark);
  mark = rg.output.length;
  replace(rg.directoryFile, '{ "homeCommunityId": ');
  rg.proc.kill('SIGHUP');
  await logged(/configuration reload refused/, mark);
  ready = await readyz();
  expect(ready.body.checks.configuration.status).toBe('degraded');
  expect(ready.body.checks.configuration.detail?.error).toMatch(/directory|JSON|YAML/i);
  // GW-C came with the directory that is still in force.
  expect(statusOf(await postWith(pki.client('gw-c'), `${rg.url}/iti38`, query()))).toBe(200);

  mark = rg.output.length;
  replace(rg.directoryFile, JSON.stringify(directory));
  await logged(/configuration reloaded/, mark);
  expect((await readyz()).body.checks.configuration.status).toBe('ok');
  expect(statusOf(await postWith(pki.client('gw-c'), `${rg.url}/iti38`, query()))).toBe(400);
}, 60_000);
