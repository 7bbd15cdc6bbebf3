/**
 * XUA at both gateways (issue 6, R6): a SAML 2.0 assertion in wsse:Security is validated against the
 * directory's IdP certificates, audiences and clock skew; required/optional per consumer and per
 * community; the validated subject and roles are the human requestor of both audit records; the
 * initiating gateway relays the consumer's assertion unchanged, and the responding gateway binds it
 * to the calling community.
 */
import {
  Action,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  encodeEnvelope,
  NS,
  type RunningGateway,
  type TransactionAuditEvent,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { soapCall } from '../support/client';
import {
  demoSeeds,
  directory,
  MemoryAuditSink,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { buildAssertion, makeIdp, securityHeader, signAssertion, type TestIdp } from '../support/xua';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const AUDIENCE = 'urn:xcai:test:gateways';

let idp: TestIdp;
let other: TestIdp;
let refA: CommunityProcess;
let refB: CommunityProcess;
let rg: RunningGateway;
let ig: RunningGateway;
let igOptional: RunningGateway;
const rgAudit = new MemoryAuditSink();
const igAudit = new MemoryAuditSink();

const query = () => encodeFindDocumentsRequest(PATIENT);

const signed = (o: Parameters<typeof buildAssertion>[0] = {}, by: TestIdp = idp) =>
  signAssertion(buildAssertion({ homeCommunityId: refA.homeCommunityId, ...o }), by);

const transactions = (sink: MemoryAuditSink) =>
  sink.events.filter((e): e is TransactionAuditEvent => e.kind === 'transaction');

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!check()) throw new Error(`never happened: ${what}`);
}

function faultOf(a: { status: number; xml: string }): { subcode?: string; reason: string } {
  const env = decodeEnvelope(a.xml, {}, false);
  expect(env.payload.is(NS.soap, 'Fault')).toBe(true);
  return {
    subcode: env.payload
      .child(NS.soap, 'Code')
      ?.child(NS.soap, 'Subcode')
      ?.child(NS.soap, 'Value')
      ?.trimmedText(),
    reason: env.payload.child(NS.soap, 'Reason')?.child(NS.soap, 'Text')?.trimmedText() ?? '',
  };
}

beforeAll(async () => {
  idp = makeIdp('Test IdP');
  other = makeIdp('Test IdP'); // same name, another key
  const seeds = await demoSeeds();
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  const xua = { idpCertificates: [idp.certFile], audiences: [AUDIENCE], clockSkewMs: 60_000 };
  rg = await startRG(
    directory({
      homeCommunityId: refB.homeCommunityId,
      name: 'B',
      local: { registry: { url: refB.registry } },
      communities: [{ homeCommunityId: refA.homeCommunityId, name: 'A', xua: 'required' }],
      xua,
    }),
    { audit: rgAudit },
  );
  const igDir = (policy: 'required' | 'optional') =>
    directory({
      homeCommunityId: refA.homeCommunityId,
      name: 'A',
      deadlineMs: 8000,
      communities: [
        { homeCommunityId: refB.homeCommunityId, name: 'B', endpoints: { iti38: `${rg.url}/iti38` } },
      ],
      consumers: [{ name: 'PACS', xua: policy }],
      xua,
    });
  ig = await startIG(igDir('required'), { audit: igAudit });
  igOptional = await startIG(igDir('optional'), { audit: new MemoryAuditSink() });
}, 90_000);

afterAll(async () => {
  await igOptional?.close();
  await ig?.close();
  await rg?.close();
  await refA?.stop();
  await refB?.stop();
  idp?.remove();
  other?.remove();
});

const iti18 = (url: string, headers?: string) =>
  soapCall(`${url}/iti18`, Action.ITI18, query(), { extraHeaders: headers });

describe('XUA', () => {
  it('validates the assertion at both gateways and audits its subject and roles as the human requestor', async () => {
    igAudit.events.length = 0;
    rgAudit.events.length = 0;
    const a = await iti18(ig.url, securityHeader(signed()));
    expect(a.status).toBe(200);
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.errors).toEqual([]);
    expect(res.status).toBe('Success');
    await until(() => transactions(igAudit).length > 0 && transactions(rgAudit).length > 0, 'audit records');
    const expected = {
      userId: 'dr.yamada@hospital-a.example',
      userName: 'Yamada Taro',
      organization: 'Hospital A',
      roles: [{ code: '309343006', codeSystem: '2.16.840.1.113883.6.96', displayName: 'Physician' }],
    };
    expect(transactions(igAudit).find((e) => e.transaction === 'ITI-18')?.humanRequestors).toEqual([
      expected,
    ]);
    expect(transactions(rgAudit).find((e) => e.transaction === 'ITI-38')?.humanRequestors).toEqual([
      expected,
    ]);
  });

  it('refuses a request without an assertion where one is required', async () => {
    const a = await iti18(ig.url);
    expect(a.status).toBe(400);
    expect(faultOf(a)).toEqual({
      subcode: 'wsse:InvalidSecurity',
      reason: 'an XUA assertion is required for this requester',
    });
  });

  it('admits a request without an assertion where it is optional (no human requestor)', async () => {
    const a = await iti18(igOptional.url);
    expect(a.status).toBe(200);
    // …but the responding gateway requires one from community A:
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.errors.map((e) => e.location)).toEqual([refB.homeCommunityId]);
  });

  it.each([
    ['expired', () => signed({ notBeforeMs: -600_000, notOnOrAfterMs: -120_000 })],
    [
      'not yet valid (beyond the clock skew)',
      () => signed({ notBeforeMs: 300_000, issueInstantMs: 300_000 }),
    ],
    ['for another audience', () => signed({ audience: 'urn:somebody:else' })],
    ['signed by an untrusted IdP', () => signed({}, other)],
    ['altered after signing', () => signed().replace('Yamada Taro', 'Somebody Else')],
    ['unsigned', () => buildAssertion()],
    ['two assertions', () => signed() + signed()],
  ])('refuses an assertion %s, even where assertions are optional', async (_what, make) => {
    for (const g of [ig, igOptional]) {
      const a = await iti18(g.url, securityHeader(make()));
      expect(a.status).toBe(400);
      const f = faultOf(a);
      expect(f.subcode).toMatch(/^wsse:(FailedAuthentication|InvalidSecurityToken|InvalidSecurity)$/);
    }
  });

  it('accepts an assertion within the clock skew', async () => {
    const a = await iti18(ig.url, securityHeader(signed({ notBeforeMs: 20_000, issueInstantMs: 20_000 })));
    expect(a.status).toBe(200);
  });

  it('the responding gateway refuses an assertion naming another home community than the caller', async () => {
    const xml = encodeEnvelope({
      action: Action.ITI38,
      to: `${rg.url}/iti38`,
      body: query(),
      extraHeaders: securityHeader(signed({ homeCommunityId: 'urn:oid:1.2.3.4.5.6' })),
      request: true,
    });
    const a = await soapCall(`${rg.url}/iti38`, Action.ITI38, '', { raw: xml });
    expect(a.status).toBe(400);
    expect(faultOf(a).subcode).toBe('wsse:FailedAuthentication');
    const ok = await soapCall(`${rg.url}/iti38`, Action.ITI38, query(), {
      extraHeaders: securityHeader(signed()),
    });
    expect(ok.status).toBe(200);
  });
});
