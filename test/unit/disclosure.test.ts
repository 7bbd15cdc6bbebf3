/**
 * The disclosure rules as functions (disclosure/policy.ts, consent.ts, entries.ts, notes.ts) and
 * their directory settings (directory/policy.ts): consent verdicts, document-class restrictions,
 * consent effective times, break-glass eligibility, audit notes, the ITI-55 decision, and every bad
 * setting named.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BPPC_CLASS_CODE,
  Disclosure,
  EMERGENCY_PURPOSES,
  noMatch,
  noopAuditSink,
  readDirectory,
  screenPatientMatch,
  silentLogger,
  type ConsentPolicy,
  type Ctx,
  type PatientQueryAnswer,
  type TransactionAuditEvent,
} from '@xcai/shared';
import { emergencyPurpose } from '@xcai/shared/src/disclosure/break-glass';
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import { SAMPLE_PATIENT, sampleSecurityEvents } from '../support/audit';
import { AUDIT_SCHEMA } from '../support/fixtures';
import { xsdErrors } from '../support/xsd';
import { dtm, inEffect } from '@xcai/shared/src/disclosure/consent';
import { objectFacts } from '@xcai/shared/src/disclosure/entries';
import { noteWithheld, releaseNote, withReleaseNote } from '@xcai/shared/src/disclosure/notes';
import { consentVerdict, documentRestriction } from '@xcai/shared/src/disclosure/policy';

const SHARE = '1.2.392.1.1';
const OPT_OUT = '1.2.392.1.2';
const policy = (o: Partial<ConsentPolicy> = {}): ConsentPolicy => ({
  permit: [SHARE],
  deny: [OPT_OUT],
  default: 'permit',
  breakGlass: false,
  ...o,
});

describe('consent verdicts', () => {
  it('deny wins over permit; without either the default decides', () => {
    expect(consentVerdict([OPT_OUT, SHARE], policy())).toEqual({
      permit: false,
      basis: 'deny-policy',
      policy: OPT_OUT,
    });
    expect(consentVerdict([SHARE], policy({ default: 'deny' }))).toEqual({
      permit: true,
      basis: 'permit-policy',
      policy: SHARE,
    });
    expect(consentVerdict([], policy())).toEqual({ permit: true, basis: 'default' });
    expect(consentVerdict(['1.2.3'], policy({ default: 'deny' }))).toEqual({
      permit: false,
      basis: 'default',
    });
  });

  it('a consent counts from serviceStartTime until before serviceStopTime, at their precision', () => {
    const now = dtm(new Date(Date.UTC(2025, 3, 1, 9, 30, 0)));
    expect(now).toBe('20250401093000');
    expect(inEffect(now, '20250401', undefined)).toBe(true);
    expect(inEffect(now, '20250402', undefined)).toBe(false);
    expect(inEffect(now, '2024', '20250401')).toBe(false);
    expect(inEffect(now, undefined, '202504010931')).toBe(true);
  });
});

describe('break-glass eligibility', () => {
  const s = { purposesOfUse: EMERGENCY_PURPOSES };
  const now = new Date('2025-04-01T00:00:00Z');
  it('only an emergency PurposeOfUse of the configured code system, before the switch-on expires', () => {
    const etreat = { code: 'ETREAT', codeSystem: '2.16.840.1.113883.5.8' };
    expect(emergencyPurpose({ purposesOfUse: [etreat] }, s, now)).toEqual(etreat);
    expect(
      emergencyPurpose({ purposesOfUse: [{ code: 'ETREAT', codeSystem: '9.9' }] }, s, now),
    ).toBeUndefined();
    expect(
      emergencyPurpose({ purposesOfUse: [{ code: 'TREAT', codeSystem: '2.16.840.1.113883.5.8' }] }, s, now),
    ).toBeUndefined();
    expect(emergencyPurpose({ purposesOfUse: [] }, s, now)).toBeUndefined();
    expect(
      emergencyPurpose({ purposesOfUse: [etreat] }, { ...s, until: new Date('2025-03-31T00:00:00Z') }, now),
    ).toBeUndefined();
    expect(emergencyPurpose({ purposesOfUse: [etreat] }, undefined, now)).toBeUndefined();
  });
});

describe('document classes', () => {
  const entry = (classCode: string, conf: string[]) =>
    objectFacts(
      `<rim:ExtrinsicObject xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="urn:uuid:1">` +
        `<rim:Classification classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a" nodeRepresentation="${classCode}">` +
        `<rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.3.6.1.4.1.19376.1.2.6.1</rim:Value></rim:ValueList></rim:Slot></rim:Classification>` +
        conf
          .map(
            (c) =>
              `<rim:Classification classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f" nodeRepresentation="${c}">` +
              `<rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.5.25</rim:Value></rim:ValueList></rim:Slot></rim:Classification>`,
          )
          .join('') +
        `</rim:ExtrinsicObject>`,
    );
  it('allows what every list allows; a missing restricted attribute is not allowed', () => {
    expect(documentRestriction(entry('IMAGES', ['N']), { classCodes: [{ code: 'IMAGES' }] })).toBeUndefined();
    expect(
      documentRestriction(entry('IMAGES', ['N']), { classCodes: [{ code: 'IMAGES', scheme: '9.9' }] }),
    ).toMatch(/classCode/);
    expect(
      documentRestriction(entry('IMAGES', ['N', 'R']), { confidentialityCodes: [{ code: 'N' }] }),
    ).toMatch(/confidentialityCode R\^\^2\.16\.840\.1\.113883\.5\.25 is not allowed/);
    expect(documentRestriction(entry('IMAGES', []), { confidentialityCodes: [{ code: 'N' }] })).toBe(
      'no confidentialityCode',
    );
    expect(documentRestriction(entry('IMAGES', ['N']), { typeCodes: [{ code: '18748-4' }] })).toMatch(
      /typeCode \(none\)/,
    );
    expect(documentRestriction(entry('IMAGES', ['N']), undefined)).toBeUndefined();
  });
});

describe('audit records', () => {
  it('a break-glass alert is a Security Alert 110127 naming the user, the purpose and the patient, valid DICOM', () => {
    const ev = sampleSecurityEvents().find((e) => e.kind === 'emergency-override')!;
    const [xml] = buildAuditMessages(ev, { auditSourceId: 'rg-b' });
    expect(xml).toMatch(/<EventID csd-code="110113"/);
    expect(xml).toMatch(
      /<EventTypeCode csd-code="110127" codeSystemName="DCM" originalText="Emergency Override Started"\/>/,
    );
    expect(xml).toMatch(/<PurposeOfUse csd-code="ETREAT"/);
    expect(xml).toMatch(/<ActiveParticipant UserID="dr.a" UserName="Dr A" UserIsRequestor="true"/);
    expect(xml).toContain(`ParticipantObjectID="${SAMPLE_PATIENT.replace(/&/g, '&amp;')}"`);
    expect(xsdErrors([xml], AUDIT_SCHEMA)).toBe('');
  });
});

/** A responding gateway's record of a transaction it served, before the disclosure notes. */
const served = (
  transaction: TransactionAuditEvent['transaction'],
  groups: TransactionAuditEvent['groups'] = [],
): TransactionAuditEvent => ({
  kind: 'transaction',
  transaction,
  side: 'responder',
  eventDateTime: new Date('2025-04-01T00:00:00Z'),
  requester: { userId: 'r' },
  responder: { userId: 's' },
  humanRequestors: [],
  patientIds: [],
  outcome: 0,
  groups,
});

describe('audit notes', () => {
  const ev = () =>
    served('ITI-39', [{ outcome: 0 }, { outcome: 8, description: 'XDSDocumentUniqueIdError' }]);
  it('withheld reasons on the record and the failed group, break-glass on every group, the patient named', () => {
    const ctx = {};
    const plain = ev();
    expect(withReleaseNote(plain, ctx)).toEqual(plain);
    noteWithheld(ctx, 'consent-denied: x');
    noteWithheld(ctx, 'consent-denied: x');
    releaseNote(ctx).breakGlass.push('consent overridden');
    releaseNote(ctx).patients.add('P^^^&1.2&ISO');
    const out = withReleaseNote({ ...ev(), outcome: 0 }, ctx);
    expect(out.outcome).toBe(4);
    expect(out.outcomeDescription).toBe('break-glass: consent overridden; consent-denied: x (2×)');
    expect(out.groups.map((g) => g.description)).toEqual([
      'break-glass: consent overridden',
      'break-glass: consent overridden; consent-denied: x (2×); XDSDocumentUniqueIdError',
    ]);
    expect(out.patientIds).toEqual(['P^^^&1.2&ISO']);
  });
});

describe('directory settings', () => {
  const base = {
    homeCommunityId: 'urn:oid:1.2.3',
    local: { registry: { url: 'http://127.0.0.1:1/r' } },
    communities: [{ homeCommunityId: 'urn:oid:1.2.4', name: 'A' }],
  };
  const problems = (extra: Record<string, unknown>, community: Record<string, unknown> = {}) => {
    try {
      readDirectory({ ...base, ...extra, communities: [{ ...base.communities[0], ...community }] });
      return [];
    } catch (e) {
      return (e as { problems?: string[] }).problems ?? [String(e)];
    }
  };

  it('fills in the defaults: BPPC class code, emergency codes, community policies', () => {
    const d = readDirectory({
      ...base,
      consent: { default: 'permit', deny: [OPT_OUT] },
      communities: [{ ...base.communities[0], consent: { default: 'deny', permit: [SHARE] } }],
    });
    expect(d.consent?.classCodes).toEqual([BPPC_CLASS_CODE]);
    expect(d.consent?.cacheMs).toBe(30_000);
    expect(d.breakGlass?.purposesOfUse).toEqual(EMERGENCY_PURPOSES);
    expect(d.communities[0].consent).toEqual({
      permit: [SHARE],
      deny: [OPT_OUT],
      default: 'deny',
      breakGlass: false,
    });
    expect(d.revocation).toEqual([]);
  });

  it('names every bad entry', () => {
    expect(problems({ consent: { deny: ['x'] } })).toEqual([
      'consent.default: is required: "permit" (opt-out region) or "deny" (opt-in region)',
      'consent.deny[0]: "x" is not an OID of at most 64 characters',
    ]);
    expect(problems({ consent: { default: 'permit', source: 'service' } })).toEqual([
      'consent.service: is required with source "service"',
    ]);
    expect(problems({ consent: { default: 'permit' } }, { consent: { breakGlass: true } })).toEqual([
      'communities[0].consent.breakGlass: needs a top-level xua: break-glass is asked for by a validated XUA PurposeOfUse',
    ]);
    expect(problems({}, { consent: { default: 'deny' } })).toEqual([
      'communities[0].consent: needs a top-level consent (where consent is read)',
    ]);
    expect(problems({}, { documents: { classCodes: ['a^b'], colour: 1 } })).toEqual([
      'communities[0].documents.colour: unknown setting',
      'communities[0].documents.classCodes[0]: "a^b" is not a code: "code" or "code^^codingScheme"',
      'communities[0].documents.classCodes: must list at least one code (leave it out to allow all)',
    ]);
    expect(
      problems(
        { local: { repositories: [], imagingDocumentSources: [] } },
        { documents: { classCodes: ['IMAGES'] } },
      ),
    ).toEqual([
      'communities[0].documents: is checked against the local registry: local.registry is required',
    ]);
    expect(problems({ breakGlass: { until: 'tomorrow' } })).toEqual([
      'breakGlass.until: "tomorrow" is not an ISO 8601 date and time (e.g. 2025-04-01T00:00:00+09:00)',
    ]);
    expect(
      problems({
        revocation: [
          { trustAnchor: '/ca.pem', ocsp: { url: 'https://ocsp.example' } },
          { trustAnchor: '/x.pem' },
        ],
      }),
    ).toEqual([
      'revocation[0].ocsp.url: must be an http:// URL (OCSP responses are signed; RFC 6960 A.1)',
      'revocation[1]: names neither crls nor ocsp',
    ]);
  });
});

describe('patient discovery (ITI-55 at the responding gateway)', () => {
  const AUTHORITY = '1.2.392.9';
  const cx = (id: string) => `${id}^^^&${AUTHORITY}&ISO`;
  const match = (id: string): PatientQueryAnswer => ({
    ...noMatch(),
    queryResponseCode: 'OK',
    matches: [
      {
        patientId: { root: AUTHORITY, extension: id },
        otherIds: [],
        person: { names: [], addresses: [] },
        custodian: '1.2.3',
        healthDataLocator: 'NotHealthDataLocator',
        score: 100,
      },
    ],
  });
  const screen = (file: string) => {
    const directory = readDirectory({
      homeCommunityId: 'urn:oid:1.2.3',
      local: { registry: { url: 'http://127.0.0.1:1/r' } },
      communities: [{ homeCommunityId: 'urn:oid:1.2.4', name: 'A' }],
      consent: { source: 'file', file, default: 'permit', permit: [SHARE], deny: [OPT_OUT], cacheMs: 0 },
    });
    const disclosure = new Disclosure({
      directory,
      audit: noopAuditSink,
      log: silentLogger,
    });
    return async (answer: PatientQueryAnswer) => {
      const ctx = {
        gateway: { directory, disclosure },
        caller: { community: directory.communities[0] },
        humanRequestors: [],
        purposesOfUse: [],
      } as unknown as Ctx;
      const out = await screenPatientMatch(answer, ctx);
      const ev = withReleaseNote(served('ITI-55'), ctx);
      return { ...out, description: ev.outcomeDescription, outcome: ev.outcome };
    };
  };
  const strip = ({ messageId: _m, ...a }: PatientQueryAnswer) => a;

  it('a match whose consent refuses the caller, or cannot be read, is no match; others pass unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xcai-consent-unit-'));
    const file = join(dir, 'consent.yaml');
    writeFileSync(file, `patients:\n  '${cx('OUT')}': ['${OPT_OUT}']\n  '${cx('IN')}': ['${SHARE}']\n`);
    const run = screen(file);
    const refused = await run(match('OUT'));
    expect(strip(refused.answer)).toEqual(strip(noMatch()));
    expect(refused.withheld).toBe(cx('OUT'));
    expect(refused.outcome).toBe(4);
    expect(refused.description).toContain(`consent-denied`);
    const shared = await run(match('IN'));
    expect(shared.answer.queryResponseCode).toBe('OK');
    expect(shared.answer.matches.map((m) => m.patientId.extension)).toEqual(['IN']);
    expect(shared.withheld).toBeUndefined();
    const none = noMatch();
    expect((await run(none)).answer).toBe(none);

    const unreadable = await screen(join(dir, 'missing.yaml'))(match('IN'));
    expect(strip(unreadable.answer)).toEqual(strip(noMatch()));
    expect(unreadable.withheld).toBe(cx('IN'));
    expect(unreadable.description).toContain('consent-unavailable');
  });
});
