/**
 * "User unknown" (issue 18, R6; MHLW guideline §6.5, §7.1), gateways as processes: without an XUA
 * assertion every cross-community transaction record names the requesting system and carries an
 * explicit "user unknown" human-requestor participant, at both gateways; the records stay valid
 * DICOM audit messages, and the access report shows the unknown user.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Action, decodeAdhocQueryResponse, encodeFindDocumentsRequest } from '@xcai/shared';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import type { Agent } from 'undici';
import { makePki, type TestPki } from '../support/certs';
import { soapCall } from '../support/client';
import { demoSeeds, ROOT, spawnCommunity, type CommunityProcess } from '../support/federation';
import { AUDIT_SCHEMA } from '../support/fixtures';
import { gatewayEnv, igDirectoryJson, rgDirectoryJson, spoolRecords } from '../support/gateways';
import { spawnGateway, type GatewayProcess } from '../support/processes';
import { xsdErrors } from '../support/xsd';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';

let pki: TestPki;
let refB: CommunityProcess;
let rg: GatewayProcess;
let ig: GatewayProcess;
let spools: { rg: string; ig: string };
let consumer: Agent;

beforeAll(async () => {
  const seeds = await demoSeeds();
  refB = await spawnCommunity([seeds.B]);
  pki = makePki(['gw-a', 'gw-b', 'consumer'], 'user-unknown');
  const rgEnv = gatewayEnv(pki, 'gw-b', 'required');
  rg = await spawnGateway(
    'responding',
    rgDirectoryJson(refB, { homeCommunityId: HOME_A, name: 'A', certName: 'gw-a', ca: pki.ca }),
    rgEnv.env,
  );
  const igEnv = gatewayEnv(pki, 'gw-a', 'required');
  ig = await spawnGateway(
    'initiating',
    igDirectoryJson(
      { homeCommunityId: refB.homeCommunityId, url: rg.url, certName: 'gw-b', ca: pki.ca },
      { consumers: [{ name: 'PACS', identity: { trustAnchors: [pki.ca], names: ['consumer'] } }] },
    ),
    igEnv.env,
  );
  spools = { rg: rgEnv.spool, ig: igEnv.spool };
  consumer = pki.client('consumer');
}, 120_000);

afterAll(async () => {
  await Promise.all([ig?.stop(), rg?.stop()]);
  await refB?.stop();
  await consumer?.close();
  pki?.remove();
});

it('names the requesting system and an explicit "user unknown" in every record without XUA', async () => {
  const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, encodeFindDocumentsRequest(PATIENT), {
    dispatcher: consumer,
  });
  expect(decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload).objects.length).toBeGreaterThan(0);
  const atIg = await spoolRecords(spools.ig, (vs) => vs.filter((v) => v.transaction).length >= 2);
  const atRg = await spoolRecords(spools.rg, (vs) => vs.filter((v) => v.transaction).length >= 2);
  const transactions = [...atIg, ...atRg].filter((v) => v.transaction);
  // IG: ITI-18 served, ITI-38 sent; RG: ITI-38 served, ITI-18 to its registry.
  expect(transactions.map((v) => v.transaction).sort()).toEqual(['ITI-18', 'ITI-18', 'ITI-38', 'ITI-38']);
  for (const v of transactions) {
    expect(v.userUnknown).toBe(true);
    expect(v.users).toEqual([]);
    expect(v.requestingSystem?.userId).toBeTruthy();
  }
  // The served records name the system by its certificate.
  const served = transactions.filter((v) => v.requestingSystem?.networkAccessPoint === '127.0.0.1');
  expect(served.length).toBeGreaterThan(0);
  const xml = loadAuditRecords([spools.ig, spools.rg]).map((r) => r.xml);
  expect(xml.join('\n')).toMatch(
    /<ActiveParticipant UserID="user-unknown" UserName="user unknown" UserIsRequestor="true"/,
  );
  expect(xsdErrors(xml, AUDIT_SCHEMA)).toBe('');

  const report = execFileSync(
    process.execPath,
    [join(ROOT, 'shared/bin/xcai-audit.js'), 'report', '--patient', PATIENT, spools.ig, spools.rg],
    { encoding: 'utf8' },
  );
  expect(report.split('\n').filter((l) => /ITI-(18|38)/.test(l) && l.includes('user unknown'))).toHaveLength(
    4,
  );
});
