/**
 * No audit record may be lost when the Audit Record Repository stops reading (issue 12, item 2).
 * A responding gateway process sends its records over RFC 5425 to the product's ARR, a process of
 * its own. The ARR is frozen (SIGSTOP: its sockets stay open and the kernel keeps accepting bytes,
 * but nothing reads them), the gateway serves requests whose records go into those buffers, the ARR
 * is killed and a new one starts on the same port. Every record the gateway spooled must arrive at
 * one of the two repositories at least once (duplicates are allowed: records carry ids).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from 'undici';
import { Action, encodeEnvelope, encodeFindDocumentsRequest } from '@xcai/shared';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import { makePki, type TestPki } from '../support/certs';
import { demoSeeds, spawnCommunity, type CommunityProcess } from '../support/federation';
import {
  spawnAuditRepository,
  spawnGateway,
  type ArrProcess,
  type GatewayProcess,
} from '../support/processes';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
/** Requests served while the ARR is frozen (each gives two records at the responding gateway). */
const REQUESTS = 80;

let tmp: string;
let pki: TestPki;
let ref: CommunityProcess;
let rg: GatewayProcess;
let spoolDir: string;
const arrs: ArrProcess[] = [];

function startArr(port: number): Promise<ArrProcess> {
  return spawnAuditRepository({
    dir: path.join(tmp, `arr-${arrs.length + 1}`),
    port,
    cert: pki.cert('arr'),
    key: pki.key('arr'),
    ca: pki.ca,
  }).then((a) => {
    arrs.push(a);
    return a;
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xcai-audit-loss-'));
  pki = makePki(['arr', 'gw-r'], 'audit-loss');
  ref = await spawnCommunity([(await demoSeeds()).A]);
  const arr = await startArr(0);
  spoolDir = path.join(tmp, 'spool');
  rg = await spawnGateway(
    'responding',
    {
      homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.322',
      name: 'R',
      local: { registry: { url: ref.registry } },
      communities: [{ homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.321', name: 'A' }],
      inboundLimits: { requestsPerSecond: 1000, burst: 1000 },
    },
    {
      XCAI_AUDIT_TRANSPORT: 'tls',
      XCAI_AUDIT_HOST: '127.0.0.1',
      XCAI_AUDIT_PORT: String(arr.port),
      XCAI_AUDIT_TLS_CERT: pki.cert('gw-r'),
      XCAI_AUDIT_TLS_KEY: pki.key('gw-r'),
      XCAI_AUDIT_TLS_CA: pki.ca,
      XCAI_AUDIT_TLS_SERVERNAME: 'arr',
      XCAI_AUDIT_SPOOL_DIR: spoolDir,
    },
  );
}, 120_000);

afterAll(async () => {
  await rg?.stop();
  for (const a of arrs) await a.stop();
  await ref?.stop();
  pki?.remove();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function query(): Promise<number> {
  const res = await request(`${rg.url}/iti38`, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
    body: encodeEnvelope({ action: Action.ITI38, body: encodeFindDocumentsRequest(PATIENT), request: true }),
    signal: AbortSignal.timeout(20_000),
  });
  await res.body.text();
  return res.statusCode;
}

const spooled = () => new Set(loadAuditRecords([spoolDir]).map((r) => r.id));
const arrived = () => new Set(arrs.flatMap((a) => loadAuditRecords([a.dir]).map((r) => r.id)));
const missing = () => {
  const got = arrived();
  return [...spooled()].filter((id) => !got.has(id));
};

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(250);
  }
  return cond();
}

it('an ARR frozen, killed and replaced on the same port: every spooled record arrives at least once', async () => {
  // Healthy first: the first records (application start, configuration) arrive.
  expect(await query()).toBe(200);
  expect(await until(() => spooled().size > 0 && missing().length === 0, 20_000)).toBe(true);
  const before = spooled().size;

  arrs[0].freeze();
  for (let i = 0; i < REQUESTS; i += 10)
    expect(await Promise.all(Array.from({ length: 10 }, () => query()))).toEqual(Array(10).fill(200));
  await until(() => spooled().size >= before + 2 * REQUESTS, 10_000);
  const written = spooled().size - before;
  // Longer than any time-based confirmation window: the records sit in the frozen ARR's buffers.
  await sleep(5_000);
  await arrs[0].kill();
  await startArr(arrs[0].port);

  const complete = await until(() => missing().length === 0, 60_000);
  const lost = missing().length;
  const [first, second] = arrs.map((a) => new Set(loadAuditRecords([a.dir]).map((r) => r.id)));
  const twice = [...first].filter((id) => second.has(id)).length;
  process.stdout.write(
    `audit records written while the ARR was frozen: ${written}; lost: ${lost} of ${spooled().size} spooled; ` +
      `received by both repositories (duplicates): ${twice}\n`,
  );
  expect(written).toBeGreaterThanOrEqual(150);
  expect(lost).toBe(0);
  expect(complete).toBe(true);
}, 120_000);
