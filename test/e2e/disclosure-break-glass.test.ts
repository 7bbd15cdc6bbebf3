/**
 * Break-glass (issue 18, R11), gateways as processes: an XUA assertion with an emergency
 * PurposeOfUse (HL7 ActReason ETREAT) overrides an opt-out — only where the calling community's
 * policy switches it on, before the switch-on expires, and never without XUA. Every such access
 * is tagged in the audit record, raises a `warn` log event, counts in xcai_break_glass_total,
 * is posted to the webhook, and shows in the access report.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  Action,
  decodeAdhocQueryResponse,
  encodeFindDocumentsRequest,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
} from '@xcai/shared';
import { request, type Agent } from 'undici';
import { readManifest } from '../../services/reference-community/src/server';
import { DEMO_PRIVACY_POLICIES } from '../../services/reference-community/src/seed/consent';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';
import { makePki, type TestPki } from '../support/certs';
import { retrieveCall, soapCall } from '../support/client';
import {
  demoSeeds,
  ROOT,
  spawnCommunity,
  studyImagingRequest,
  type CommunityProcess,
} from '../support/federation';
import { gatewayEnv, kosRequests, rgDirectoryJson, spoolRecords } from '../support/gateways';
import { AUDIT_SCHEMA } from '../support/fixtures';
import { xsdErrors } from '../support/xsd';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import { spawnGateway, type GatewayProcess } from '../support/processes';
import { buildAssertion, makeIdp, securityHeader, signAssertion, type TestIdp } from '../support/xua';

const SATO = 'JP1002^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'; // opted out in community B
const HOME_A = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
const HOME_C = 'urn:oid:1.3.6.1.4.1.21367.13.70.103';
const AUDIENCE = 'urn:xcai:test:gateways';
const ETREAT = { code: 'ETREAT', codeSystem: '2.16.840.1.113883.5.8', displayName: 'Emergency Treatment' };
const TREAT = { code: 'TREAT', codeSystem: '2.16.840.1.113883.5.8', displayName: 'Treatment' };

let pki: TestPki;
let idp: TestIdp;
let refB: CommunityProcess;
let m: SeedManifest;
let rg: GatewayProcess;
let expired: GatewayProcess;
let spool: string;
let asA: Agent;
let asC: Agent;
let hook: Server;
const alerts: Record<string, unknown>[] = [];

const xua = () => ({ idpCertificates: [idp.certFile], audiences: [AUDIENCE] });
const consent = { source: 'bppc', default: 'permit', deny: [DEMO_PRIVACY_POLICIES.optOut] };

beforeAll(async () => {
  const seeds = await demoSeeds();
  m = readManifest(seeds.B);
  refB = await spawnCommunity([seeds.B]);
  pki = makePki(['gw-a', 'gw-b', 'gw-c'], 'break-glass');
  idp = makeIdp('Break-glass IdP');
  asA = pki.client('gw-a');
  asC = pki.client('gw-c');
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      alerts.push(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const webhook = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`;
  const directoryFor = (until?: string) => {
    return rgDirectoryJson(
      refB,
      [
        { homeCommunityId: HOME_A, name: 'A', certName: 'gw-a', ca: pki.ca, consent: { breakGlass: true } },
        // Community C's agreement has no break-glass.
        { homeCommunityId: HOME_C, name: 'C', certName: 'gw-c', ca: pki.ca },
      ],
      { xua: xua(), consent, breakGlass: { webhook: { url: webhook }, ...(until ? { until } : {}) } },
    );
  };
  const e = gatewayEnv(pki, 'gw-b', 'required');
  spool = e.spool;
  rg = await spawnGateway('responding', directoryFor(), e.env);
  expired = await spawnGateway(
    'responding',
    directoryFor('2020-04-01T00:00:00+09:00'),
    gatewayEnv(pki, 'gw-b', 'required').env,
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([rg?.stop(), expired?.stop()]);
  await refB?.stop();
  await asA?.close();
  await asC?.close();
  await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
  pki?.remove();
  idp?.remove();
});

const assertion = (home: string, purposeOfUse?: typeof ETREAT) =>
  securityHeader(
    signAssertion(buildAssertion({ homeCommunityId: home, audience: AUDIENCE, purposeOfUse }), idp),
  );

async function objectsFor(g: GatewayProcess, client: Agent, headers?: string): Promise<number> {
  const a = await soapCall(`${g.url}/iti38`, Action.ITI38, encodeFindDocumentsRequest(SATO), {
    dispatcher: client,
    extraHeaders: headers,
  });
  expect(a.status).toBe(200);
  return decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload).objects.length;
}

const study = () => m.patients.find((p) => p.id === SATO)!.studies[0];

describe('break-glass', () => {
  it('never without the emergency PurposeOfUse, the community switch-on, or before it expires', async () => {
    expect(await objectsFor(rg, asA)).toBe(0); // no XUA: no break-glass
    expect(await objectsFor(rg, asA, assertion(HOME_A, TREAT))).toBe(0);
    expect(await objectsFor(rg, asC, assertion(HOME_C, ETREAT))).toBe(0); // C's agreement has none
    expect(await objectsFor(expired, asA, assertion(HOME_A, ETREAT))).toBe(0); // switch-on expired
    expect(alerts).toHaveLength(0);
  });

  it('overrides an opt-out for an emergency, tagged, alerted, counted and reported', async () => {
    const emergency = assertion(HOME_A, ETREAT);
    expect(await objectsFor(rg, asA, emergency)).toBeGreaterThan(0);
    // The same for the patient's documents and images (the study was released by the query).
    const docs = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest(kosRequests(m, SATO)),
      {
        dispatcher: asA,
        extraHeaders: emergency,
      },
    );
    expect(docs.documents).toHaveLength(kosRequests(m, SATO).length);
    const imaging = encodeRetrieveImagingDocumentSetRequest(studyImagingRequest(m, study()));
    const images = await retrieveCall(`${rg.url}/rad75`, Action.RAD75, imaging, {
      dispatcher: asA,
      extraHeaders: emergency,
    });
    expect(images.errors).toEqual([]);
    expect(images.documents.length).toBeGreaterThan(0);
    // Without the emergency assertion consent applies again, for the same released study.
    const again = await retrieveCall(`${rg.url}/rad75`, Action.RAD75, imaging, { dispatcher: asA });
    expect(again.documents).toHaveLength(0);

    // Audit: the transaction records are tagged; an Emergency Override alert per access.
    const views = await spoolRecords(
      spool,
      (vs) => vs.filter((v) => v.eventTypes.includes('Emergency Override Started')).length >= 3,
    );
    const tagged = views.filter((v) => v.breakGlass && v.transaction);
    expect(tagged.map((v) => v.transaction).sort()).toEqual(['ITI-38', 'ITI-39', 'RAD-75']);
    for (const v of tagged) {
      expect(v.purposesOfUse).toEqual(['ETREAT']);
      expect(v.outcomeDescription).toMatch(/^break-glass: consent overridden for ETREAT/);
      expect(v.users.map((u) => u.userId)).toEqual(['dr.yamada@hospital-a.example']);
      expect(v.patients).toEqual([SATO]);
    }
    const alert = views.find((v) => v.eventTypes.includes('Emergency Override Started'))!;
    expect(alert.eventId).toBe('110113');
    expect(alert.patients).toEqual([SATO]);
    expect(alert.users.map((u) => u.userId)).toContain('dr.yamada@hospital-a.example');

    expect(
      xsdErrors(
        loadAuditRecords([spool]).map((r) => r.xml),
        AUDIT_SCHEMA,
      ),
    ).toBe('');

    // Log event at warn, without the patient.
    const logged = rg.output
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"break-glass"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toHaveLength(3);
    expect(logged[0]).toMatchObject({
      level: 'warn',
      event: 'break-glass',
      community: HOME_A,
      purposeOfUse: 'ETREAT^^2.16.840.1.113883.5.8',
    });
    expect(JSON.stringify(logged)).not.toContain('JP1002');

    // Prometheus counter.
    const metrics = await (await request(`${rg.mgmtUrl}/metrics`)).body.text();
    expect(metrics).toMatch(new RegExp(`xcai_break_glass_total\\{[^}]*community="${HOME_A}"[^}]*\\} 3`));
    expect(metrics).toMatch(/xcai_consent_decisions_total\{[^}]*decision="deny"[^}]*\} [1-9]/);

    // Webhook (no patient id either).
    for (let i = 0; i < 100 && alerts.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(alerts).toHaveLength(3);
    expect(alerts[0]).toMatchObject({
      event: 'break-glass',
      community: HOME_A,
      user: 'dr.yamada@hospital-a.example',
    });
    expect(JSON.stringify(alerts)).not.toContain('JP1002');

    // The access report lists it.
    const report = execFileSync(
      process.execPath,
      [join(ROOT, 'shared/bin/xcai-audit.js'), 'report', '--patient', SATO, spool],
      {
        encoding: 'utf8',
      },
    );
    expect(report).toMatch(/ITI-38 BREAK-GLASS/);
    expect(report).toMatch(/Yamada Taro.* for ETREAT/);
    const security = execFileSync(
      process.execPath,
      [join(ROOT, 'shared/bin/xcai-audit.js'), 'report', '--security', spool],
      {
        encoding: 'utf8',
      },
    );
    expect(security).toMatch(/Emergency Override Started BREAK-GLASS/);
  });
});
