/**
 * XCPD under bad input (issue 14): malformed, incomplete and oversized ITI-55 requests at the
 * responding gateway; an MPI with several candidates; a Patient Demographics Supplier that is down
 * or slow, at either end; Responding Gateways that answer with another assigning authority,
 * several candidates, AnswerNotAvailable, garbage, or not at all. Never a crash, a hang or a guess:
 * a clear HL7 V3 error, a warning naming the community, or XDSUnavailableCommunity, and the rest
 * of the federation still answers.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Action,
  decodeEnvelope,
  decodePatientQuery,
  decodePatientQueryAnswer,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  encodePatientQuery,
  encodePatientQueryAnswer,
  MORE_ATTRIBUTES_SYSTEM,
  XCPD_ERROR_SYSTEM,
  type PatientMatch,
  type PatientQuery,
  type PatientQueryAnswer,
  type RunningGateway,
  type TransactionAuditEvent,
} from '@xcai/shared';
import { soapCall } from '../support/client';
import {
  directory,
  MemoryAuditSink,
  spawnCommunity,
  startIG,
  startRG,
  xcpdSeeds,
  type CommunityProcess,
} from '../support/federation';
import { HL7V3_SCHEMA } from '../support/fixtures';
import { findDocuments, personName, scriptedPeer, type ScriptedPeer } from '../support/xcpd';
import { xsdErrors } from '../support/xsd';
import {
  generateCommunitySeed,
  XCPD_DEMO_AUTHORITIES,
  xcpdDemoPatientIds,
} from '../../services/reference-community/src/seed/generate';
import type { PatientSpec } from '../../services/reference-community/src/seed/types';

const YAMADA = [...xcpdDemoPatientIds().values()][0] as Record<'A' | 'B' | 'C', string>;
const D_OID = '1.3.6.1.4.1.21367.13.70.104';
const D_IDS = '1.3.6.1.4.1.21367.13.20.4000';
const stop: (() => Promise<unknown>)[] = [];
let seeds: Record<'A' | 'B' | 'C', string>;
let refA: CommunityProcess, refB: CommunityProcess, refD: CommunityProcess;
let rgB: RunningGateway;

const n = personName;
const QUERY: PatientQuery = {
  messageId: { root: '1f0e2d3c-4b5a-4697-8877-665544332211' },
  sender: { id: { root: '1.3.6.1.4.1.21367.13.70.101' }, organization: '1.3.6.1.4.1.21367.13.70.101' },
  receivers: [{ id: { root: '1.3.6.1.4.1.21367.13.70.102' } }],
  senderAssigningAuthority: XCPD_DEMO_AUTHORITIES.A,
  queryId: { root: '1.3.6.1.4.1.21367.13.70.101', extension: 'bad-input' },
  responsePriority: 'I',
  ids: [{ root: XCPD_DEMO_AUTHORITIES.A, extension: 'JP1001' }],
  demographics: {
    names: [n('山田', '太郎', 'IDE'), n('ヤマダ', 'タロウ', 'SYL')],
    gender: 'M',
    birthTime: '19650312',
    addresses: [],
  },
  scopingOrganizations: [],
};

async function iti55(url: string, q: PatientQuery | string) {
  const body = typeof q === 'string' ? q : encodePatientQuery(q);
  const a = await soapCall(url, Action.ITI55, body);
  if (a.status !== 200) return { status: a.status, xml: a.xml };
  const ans = decodePatientQueryAnswer(a.envelope.doc, a.envelope.payload);
  return { status: a.status, xml: a.xml, ans };
}

function rgDirectory(
  home: string,
  authority: string,
  pdq: { url: string; timeoutMs?: number },
  registry?: string,
) {
  return directory({
    homeCommunityId: home,
    name: 'RG',
    local: { ...(registry ? { registry: { url: registry } } : {}), patientDemographicsSupplier: pdq },
    patientIdentity: { assigningAuthority: authority },
    communities: [{ homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.101', name: 'A' }],
  });
}

/** Community D: twins of one name and birth date at one address, and a namesake elsewhere. */
async function seedD(): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'xcpd-seed-d-'));
  const person = (id: string, postalCode: string): PatientSpec => ({
    id: `${id}^^^&${D_IDS}&ISO`,
    name: { alphabetic: 'Yamada^Tarou', ideographic: '山田^太郎', phonetic: 'やまだ^たろう' },
    characterSet: 'ISO_IR 192',
    birthDate: '19650312',
    sex: 'M',
    address: { streetAddressLine: ['1'], city: 'x', state: 'y', postalCode, country: 'JP' },
    studies: [],
  });
  await generateCommunitySeed(
    {
      community: 'D',
      homeCommunityId: `urn:oid:${D_OID}`,
      uidRoot: `${D_OID}.1`,
      repositoryUniqueId: `${D_OID}.2`,
      idsRepositoryUniqueId: `${D_OID}.3`,
      patients: [person('D-1', '111-1111'), person('D-2', '111-1111'), person('D-3', '222-2222')],
    },
    out,
  );
  return out;
}

beforeAll(async () => {
  seeds = await xcpdSeeds();
  [refA, refB, refD] = await Promise.all([
    spawnCommunity([seeds.A]),
    spawnCommunity([seeds.B]),
    spawnCommunity([await seedD()]),
  ]);
  stop.push(
    () => refA.stop(),
    () => refB.stop(),
    () => refD.stop(),
  );
  rgB = await startRG(
    rgDirectory(refB.homeCommunityId, XCPD_DEMO_AUTHORITIES.B, { url: refB.pdq }, refB.registry),
  );
  stop.push(() => rgB.close());
}, 120_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s();
});

describe('the responding gateway', () => {
  it('answers malformed HL7 V3 with a SOAP fault, incomplete or unsupported queries with an HL7 V3 error', async () => {
    const url = `${rgB.url}/iti55`;
    const raw = (body: string) =>
      soapCall(url, Action.ITI55, '', {
        raw: encodeEnvelope({ action: Action.ITI55, to: url, body, request: true }),
      });
    const broken = await raw('<PRPA_IN201305UV02 xmlns="urn:hl7-org:v3"><id root="1"></PRPA_IN201305UV02>');
    expect(broken.status).toBe(400);
    expect(broken.xml).toContain('Fault');
    const wrong = await raw('<Other xmlns="urn:hl7-org:v3"/>');
    expect(wrong.status).toBe(400);
    expect(wrong.xml).toContain('expected hl7:PRPA_IN201305UV02');

    const noQuery = await iti55(
      url,
      encodePatientQuery(QUERY).replace(/<queryByParameter[\s\S]*<\/queryByParameter>/, ''),
    );
    const noDemographics = await iti55(url, {
      ...QUERY,
      ids: [],
      demographics: { ...QUERY.demographics, birthTime: undefined },
    });
    const deferred = await iti55(url, { ...QUERY, responsePriority: 'D' });
    const tooMany = await iti55(url, {
      ...QUERY,
      demographics: { ...QUERY.demographics, names: Array(11).fill(n('a', 'b', 'ABC')) },
    });
    expect(noQuery.ans).toMatchObject({ acknowledgement: 'AE', queryResponseCode: 'QE' });
    expect(noQuery.ans?.detail).toContain('queryByParameter is missing');
    expect(noDemographics.ans).toMatchObject({ acknowledgement: 'AE', queryResponseCode: 'QE' });
    expect(noDemographics.ans?.detail).toContain('LivingSubjectName and LivingSubjectBirthTime are required');
    expect(deferred.ans).toMatchObject({ acknowledgement: 'AE', queryResponseCode: 'AE' });
    expect(deferred.xml).toContain('code="NS250"');
    expect(tooMany.ans?.detail).toContain('more than 10 livingSubjectName');
    expect(xsdErrors([noQuery.xml, noDemographics.xml, deferred.xml, tooMany.xml], HL7V3_SCHEMA)).toBe('');

    const huge = await iti55(url, {
      ...QUERY,
      demographics: { ...QUERY.demographics, names: [n('x'.repeat(5 << 20), 'y', 'ABC')] },
    });
    expect(huge.status).toBe(400);
    expect(huge.xml).toContain('too large');

    // Still serving: the same patient, asked properly, is found.
    const good = await iti55(url, QUERY);
    expect(good.ans?.matches.map((m) => m.patientId.extension)).toEqual(['B-4711']);
  });

  it('several candidates are no match: it says which demographics would decide, or AnswerNotAvailable', async () => {
    const rgD = await startRG(rgDirectory(`urn:oid:${D_OID}`, D_IDS, { url: refD.pdq }));
    try {
      const url = `${rgD.url}/iti55`;
      const at = (postalCode?: string, gender?: 'M') =>
        iti55(url, {
          ...QUERY,
          demographics: {
            ...QUERY.demographics,
            gender,
            addresses: postalCode ? [{ streetAddressLine: [], postalCode }] : [],
          },
        });
      const nothing = await at(undefined, undefined);
      expect(nothing.ans).toMatchObject({ acknowledgement: 'AA', queryResponseCode: 'NF', matches: [] });
      expect(nothing.ans?.issues).toEqual([
        { code: 'LivingSubjectAdministrativeGenderRequested', codeSystem: MORE_ATTRIBUTES_SYSTEM },
        { code: 'PatientAddressRequested', codeSystem: MORE_ATTRIBUTES_SYSTEM },
      ]);
      const twins = await at('111-1111', 'M');
      expect(twins.ans).toMatchObject({ queryResponseCode: 'NF', matches: [] });
      expect(twins.ans?.issues).toEqual([{ code: 'AnswerNotAvailable', codeSystem: XCPD_ERROR_SYSTEM }]);
      const namesake = await at('222-2222', 'M');
      expect(namesake.ans?.matches.map((m) => m.patientId)).toEqual([{ root: D_IDS, extension: 'D-3' }]);
      expect(xsdErrors([nothing.xml, twins.xml, namesake.xml], HL7V3_SCHEMA)).toBe('');
    } finally {
      await rgD.close();
    }
  });

  it('a supplier that is down or slow: an application error (InternalError) within the bound', async () => {
    const slowRef = await spawnCommunity([seeds.B], { delayMs: 5_000 });
    stop.push(() => slowRef.stop());
    const home = refB.homeCommunityId;
    const down = await startRG(rgDirectory(home, XCPD_DEMO_AUTHORITIES.B, { url: 'http://127.0.0.1:1/pdq' }));
    const slow = await startRG(
      rgDirectory(home, XCPD_DEMO_AUTHORITIES.B, { url: slowRef.pdq, timeoutMs: 400 }),
    );
    try {
      for (const rg of [down, slow]) {
        const t0 = Date.now();
        const a = await iti55(`${rg.url}/iti55`, QUERY);
        expect(Date.now() - t0).toBeLessThan(3_000);
        expect(a.ans).toMatchObject({
          acknowledgement: 'AE',
          queryResponseCode: 'AE',
          issues: [{ code: 'InternalError', codeSystem: XCPD_ERROR_SYSTEM }],
        });
        expect(xsdErrors([a.xml], HL7V3_SCHEMA)).toBe('');
      }
    } finally {
      await down.close();
      await slow.close();
    }
  });
});

/** An ITI-55 answer to the request a scripted peer received, echoing it as a real peer would. */
function answerTo(requestXml: string, a: Partial<PatientQueryAnswer>): string {
  const env = decodeEnvelope(requestXml, {}, true);
  const req = decodePatientQuery(env.doc, env.payload);
  return encodePatientQueryAnswer(
    {
      messageId: { root: '5e4d3c2b-1a09-4877-9665-544332211000' },
      acknowledgement: 'AA',
      queryResponseCode: a.matches?.length ? 'OK' : 'NF',
      matches: [],
      issues: [],
      ...a,
    },
    {
      sender: { id: { root: '2.999.1' } },
      receiver: req.sender,
      targetMessageId: req.messageId,
      queryId: req.queryId,
      queryByParameterXml: req.queryByParameterXml,
    },
  );
}

const match = (root: string, extension: string, custodian?: string): PatientMatch => ({
  patientId: { root, extension },
  otherIds: [],
  person: QUERY.demographics,
  custodian,
});

describe('the initiating gateway', () => {
  const peers: Record<string, ScriptedPeer> = {};
  const HOMES = {
    foreign: 'urn:oid:2.999.101',
    two: 'urn:oid:2.999.102',
    unavailable: 'urn:oid:2.999.103',
    more: 'urn:oid:2.999.104',
    garbage: 'urn:oid:2.999.105',
    hang: 'urn:oid:2.999.106',
    elsewhere: 'urn:oid:2.999.107',
  } as const;
  const oid = (k: keyof typeof HOMES) => HOMES[k].slice(8);
  const authority = (k: keyof typeof HOMES) => `${oid(k)}.9`;
  const scripts: Record<keyof typeof HOMES, (req: string) => string | { raw: string } | 'hang'> = {
    // An id of community B's assigning authority, not of the peer's own.
    foreign: (r) => answerTo(r, { matches: [match(XCPD_DEMO_AUTHORITIES.B, 'B-4711', oid('foreign'))] }),
    two: (r) =>
      answerTo(r, {
        matches: [match(authority('two'), 'T1', oid('two')), match(authority('two'), 'T2', oid('two'))],
      }),
    unavailable: (r) =>
      answerTo(r, {
        acknowledgement: 'AE',
        queryResponseCode: 'AE',
        issues: [{ code: 'AnswerNotAvailable', codeSystem: XCPD_ERROR_SYSTEM }],
      }),
    more: (r) =>
      answerTo(r, { issues: [{ code: 'PatientTelecomRequested', codeSystem: MORE_ATTRIBUTES_SYSTEM }] }),
    garbage: () => ({ raw: 'this is not SOAP' }),
    hang: () => 'hang',
    // A match held by another community (XCPD health data locator): not this community's patient.
    elsewhere: (r) => answerTo(r, { matches: [match(authority('elsewhere'), 'E1', '2.999.999')] }),
  };
  let ig: RunningGateway;
  const audit = new MemoryAuditSink();

  beforeAll(async () => {
    for (const k of Object.keys(HOMES) as (keyof typeof HOMES)[])
      peers[k] = await scriptedPeer((action, body) =>
        action === Action.ITI55 ? scripts[k](body) : { raw: 'ITI-38 must not be sent' },
      );
    ig = await startIG(
      directory({
        homeCommunityId: refA.homeCommunityId,
        name: 'A',
        local: { registry: { url: refA.registry }, patientDemographicsSupplier: { url: refA.pdq } },
        communities: [
          {
            homeCommunityId: refB.homeCommunityId,
            name: 'B',
            endpoints: { iti38: `${rgB.url}/iti38`, iti55: `${rgB.url}/iti55` },
            patientIdentity: { mode: 'xcpd', assigningAuthority: XCPD_DEMO_AUTHORITIES.B },
          },
          ...(Object.keys(HOMES) as (keyof typeof HOMES)[]).map((k) => ({
            homeCommunityId: HOMES[k],
            name: k,
            endpoints: {
              iti38: `${peers[k].url}/iti38`,
              iti55: { url: `${peers[k].url}/iti55`, timeoutMs: 800 },
            },
            patientIdentity: { mode: 'xcpd', assigningAuthority: authority(k) },
          })),
        ],
      }),
      { audit },
    );
  });
  afterAll(async () => {
    await ig?.close();
    for (const p of Object.values(peers)) await p.close();
  });

  it('misbehaving peers: warnings or XDSUnavailableCommunity naming each, no ITI-38 to any, B still answers', async () => {
    const t0 = Date.now();
    const found = await findDocuments(`${ig.url}/iti18`, YAMADA.A);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(found.status).toBe('PartialSuccess');
    expect(new Set(found.homes)).toEqual(new Set([refA.homeCommunityId, refB.homeCommunityId]));
    const by = (home: string) => found.errors.filter((e) => e.location === home);
    const warning = (home: string, text: string) =>
      expect(by(home)).toEqual([
        expect.objectContaining({
          errorCode: 'XDSUnknownPatientId',
          severity: 'Warning',
          codeContext: expect.stringContaining(text),
        }),
      ]);
    warning(HOMES.foreign, `a patient id of assigning authority ${XCPD_DEMO_AUTHORITIES.B}, not its own`);
    warning(HOMES.two, 'returned 2 candidates');
    warning(HOMES.unavailable, 'AnswerNotAvailable');
    warning(HOMES.more, 'PatientTelecomRequested');
    for (const h of [HOMES.garbage, HOMES.hang])
      expect(by(h)).toEqual([
        expect.objectContaining({ errorCode: 'XDSUnavailableCommunity', severity: 'Error' }),
      ]);
    expect(by(HOMES.elsewhere)).toEqual([]);
    expect(found.errors).toHaveLength(6);
    for (const p of Object.values(peers)) expect(p.received.map((r) => r.action)).toEqual([Action.ITI55]);
    // Answers naming candidates we did not take are audited as minor failures (never linked in a report).
    const record = (home: string) =>
      audit.events.find(
        (e): e is TransactionAuditEvent =>
          e.kind === 'transaction' && e.transaction === 'ITI-55' && e.query?.homeCommunityId === home,
      );
    for (const h of [HOMES.foreign, HOMES.two, HOMES.elsewhere])
      expect(record(h)).toMatchObject({
        outcome: 4,
        outcomeDescription: expect.stringContaining('answer rejected'),
      });
    expect(record(refB.homeCommunityId)).toMatchObject({ outcome: 0 });
  });

  it('our supplier down or slow: the xcpd communities are unavailable, the rest still answer, in bounded time', async () => {
    const slowA = await spawnCommunity([seeds.A], { delayMs: 5_000 });
    stop.push(() => slowA.stop());
    const shared = await scriptedPeer(() => encodeAdhocQueryResponse('Success', [], []));
    stop.push(() => shared.close());
    for (const pdq of [{ url: 'http://127.0.0.1:1/pdq' }, { url: slowA.pdq, timeoutMs: 500 }]) {
      const g = await startIG(
        directory({
          homeCommunityId: refA.homeCommunityId,
          name: 'A',
          local: { registry: { url: refA.registry }, patientDemographicsSupplier: pdq },
          communities: [
            {
              homeCommunityId: refB.homeCommunityId,
              name: 'B',
              endpoints: { iti38: `${rgB.url}/iti38`, iti55: `${rgB.url}/iti55` },
              patientIdentity: { mode: 'xcpd', assigningAuthority: XCPD_DEMO_AUTHORITIES.B },
            },
            { homeCommunityId: 'urn:oid:2.999.200', name: 'S', endpoints: { iti38: `${shared.url}/iti38` } },
          ],
        }),
      );
      try {
        const t0 = Date.now();
        const found = await findDocuments(`${g.url}/iti18`, YAMADA.A);
        expect(Date.now() - t0).toBeLessThan(3_000);
        expect(found.status).toBe('PartialSuccess');
        expect(new Set(found.homes)).toEqual(new Set([refA.homeCommunityId]));
        expect(found.errors).toEqual([
          expect.objectContaining({
            errorCode: 'XDSUnavailableCommunity',
            location: refB.homeCommunityId,
            codeContext: expect.stringContaining(
              "the patient's demographics for patient discovery are not available",
            ),
          }),
        ]);
      } finally {
        await g.close();
      }
    }
    // The shared-mode community was asked both times, with A's id unchanged.
    expect(shared.received).toHaveLength(2);
    for (const r of shared.received) expect(r.body).toContain('JP1001^^^&amp;');
  });
});
