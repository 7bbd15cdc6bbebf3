/**
 * The HL7 V3 messages of ITI-55 / ITI-47 (PRPA_IN201305UV02, PRPA_IN201306UV02): what we emit is
 * valid against the NE2008 schemas (xmllint), what real peers send (IPF's public samples) reads.
 */
import { readFileSync } from 'node:fs';
import {
  Action,
  decodePatientQuery,
  decodePatientQueryAnswer,
  encodeEnvelope,
  encodePatientQuery,
  encodePatientQueryAnswer,
  MORE_ATTRIBUTES_SYSTEM,
  parseXml,
  representationOf,
  XCPD_ERROR_SYSTEM,
  type PatientQuery,
  type PatientQueryAnswer,
  type PersonName,
} from '@xcai/shared';
import { HL7V3_SCHEMA, sample } from '../support/fixtures';
import { xsdErrors } from '../support/xsd';

const name = (family: string, given: string, use: string[] = []): PersonName => ({
  family: [family],
  given: [given],
  prefix: [],
  suffix: [],
  use,
});

const QUERY: PatientQuery = {
  messageId: { root: '4b1e0a7c-2f59-4c64-9d1e-6a3e0f5b2c11' },
  sender: { id: { root: '1.3.6.1.4.1.21367.13.70.101' }, organization: '1.3.6.1.4.1.21367.13.70.101' },
  receivers: [{ id: { root: '1.3.6.1.4.1.21367.13.70.102' }, telecom: 'https://gw.b.example/iti55' }],
  senderAssigningAuthority: '1.3.6.1.4.1.21367.13.20.1000',
  queryId: { root: '1.3.6.1.4.1.21367.13.70.101', extension: 'q-1' },
  responsePriority: 'I',
  ids: [{ root: '1.3.6.1.4.1.21367.13.20.1000', extension: 'JP1001' }],
  demographics: {
    names: [
      name('山田', '太郎', ['IDE']),
      name('やまだ', 'たろう', ['SYL']),
      name('Yamada', 'Tarou', ['ABC']),
    ],
    gender: 'M',
    birthTime: '19650312',
    addresses: [
      {
        streetAddressLine: ['架空町1-2-3'],
        city: 'さくら市',
        state: '東京都',
        postalCode: '190-0001',
        country: 'JP',
      },
    ],
  },
  scopingOrganizations: [],
};

function answer(overrides: Partial<PatientQueryAnswer>): string {
  const doc = parseXml(encodePatientQuery(QUERY));
  const req = decodePatientQuery(doc, doc.root);
  return encodePatientQueryAnswer(
    {
      messageId: { root: '9c2f3b1a-7d45-4e0b-8f61-2a9d4c7e5b30' },
      acknowledgement: 'AA',
      queryResponseCode: 'OK',
      matches: [],
      issues: [],
      ...overrides,
    },
    {
      sender: { id: { root: '1.3.6.1.4.1.21367.13.70.102' } },
      receiver: req.sender,
      targetMessageId: req.messageId,
      queryId: req.queryId,
      queryByParameterXml: req.queryByParameterXml,
    },
  );
}

const MATCH = {
  patientId: { root: '1.3.6.1.4.1.21367.13.20.2000', extension: 'B-4711' },
  otherIds: [{ root: '1.3.6.1.4.1.21367.13.70.102.6', extension: 'M1001' }],
  person: QUERY.demographics,
  custodian: '1.3.6.1.4.1.21367.13.70.102',
  healthDataLocator: 'NotHealthDataLocator',
  score: 100,
};

describe('PRPA_IN201305UV02 (the query)', () => {
  it('is schema-valid bare and in a SOAP 1.2 envelope, and reads back with every parameter', () => {
    const xml = encodePatientQuery(QUERY);
    const env = encodeEnvelope({
      action: Action.ITI55,
      to: 'https://gw.b.example/iti55',
      body: xml,
      request: true,
    });
    expect(xsdErrors([xml, env], HL7V3_SCHEMA)).toBe('');
    const doc = parseXml(xml);
    const q = decodePatientQuery(doc, doc.root);
    expect(q.problems).toEqual([]);
    expect(q.demographics).toEqual(QUERY.demographics);
    expect(q.ids).toEqual(QUERY.ids);
    expect(q.senderAssigningAuthority).toBe(QUERY.senderAssigningAuthority);
    expect(q.sender.organization).toBe('1.3.6.1.4.1.21367.13.70.101');
    expect(q.queryId).toEqual(QUERY.queryId);
    expect(q.demographics.names.map(representationOf)).toEqual(['IDE', 'SYL', 'ABC']);
    // The echo and the audited query: the QueryByParameter, self-contained.
    expect(q.queryByParameterXml).toMatch(/^<queryByParameter xmlns="urn:hl7-org:v3"/);
    expect(parseXml(q.queryByParameterXml).root.ns).toBe('urn:hl7-org:v3');
  });

  it('escapes what it writes: markup in a name stays text', () => {
    const evil = { ...QUERY, demographics: { ...QUERY.demographics, names: [name('<a&b>', '"x"')] } };
    const xml = encodePatientQuery(evil);
    expect(xsdErrors([xml], HL7V3_SCHEMA)).toBe('');
    const doc = parseXml(xml);
    expect(decodePatientQuery(doc, doc.root).demographics.names[0].family).toEqual(['<a&b>']);
  });

  it("reads IPF's public ITI-55 and ITI-47 request samples", () => {
    for (const f of ['iti-55/ipf-iti55-request.xml', 'iti-47/ipf-iti47-query.xml']) {
      const doc = parseXml(readFileSync(sample(f)));
      const q = decodePatientQuery(doc, doc.root);
      expect(q.problems).toEqual([]);
      expect(q.demographics.names[0]).toMatchObject({ family: ['Jones'], given: ['Jimmy'] });
      expect(q.demographics.gender).toBe('M');
      expect(q.ids[0]).toEqual({ root: '1.2.840.114350.1.13.99997.2.3412', extension: '1234' });
      expect(q.queryId).toEqual({ root: '1.2.840.114350.1.13.28.1.18.5.999', extension: '18204' });
    }
    const xcpd = parseXml(readFileSync(sample('iti-55/ipf-iti55-request.xml')));
    const q = decodePatientQuery(xcpd, xcpd.root);
    expect(q.sender.organization).toBe('1.2.3.928.955');
    expect(q.senderAssigningAuthority).toBe('1.2.840.114350.1.13.99997.2.3412');
    expect(q.ids).toHaveLength(2);
    const pdq = parseXml(readFileSync(sample('iti-47/ipf-iti47-query.xml')));
    expect(decodePatientQuery(pdq, pdq.root).scopingOrganizations).toHaveLength(3);
  });

  it('reads any prefix for the HL7 namespace', () => {
    const prefixed = encodePatientQuery(QUERY)
      .replace('xmlns="urn:hl7-org:v3"', 'xmlns:v3="urn:hl7-org:v3"')
      .replace(/<(\/?)(?!v3:)([a-zA-Z])/g, '<$1v3:$2')
      .replace(/ xmlns="urn:hl7-org:v3"/g, '');
    const doc = parseXml(prefixed);
    expect(decodePatientQuery(doc, doc.root).demographics).toEqual(QUERY.demographics);
  });

  it('lists missing and oversized parts as problems, and refuses another message', () => {
    const noQuery = parseXml(
      encodePatientQuery(QUERY).replace(/<queryByParameter[\s\S]*<\/queryByParameter>/, ''),
    );
    expect(decodePatientQuery(noQuery, noQuery.root).problems).toEqual([
      'controlActProcess/queryByParameter is missing',
    ]);
    const many = { ...QUERY, demographics: { ...QUERY.demographics, names: Array(11).fill(name('A', 'B')) } };
    const manyDoc = parseXml(encodePatientQuery(many));
    expect(decodePatientQuery(manyDoc, manyDoc.root).problems).toContain(
      'more than 10 livingSubjectName parameters',
    );
    const badDate = parseXml(
      encodePatientQuery({ ...QUERY, demographics: { ...QUERY.demographics, birthTime: '1965-03-12' } }),
    );
    expect(decodePatientQuery(badDate, badDate.root).problems).toContain(
      'livingSubjectBirthTime is not an HL7 TS',
    );
    const other = parseXml('<PRPA_IN201306UV02 xmlns="urn:hl7-org:v3"/>');
    expect(() => decodePatientQuery(other, other.root)).toThrow(/expected hl7:PRPA_IN201305UV02/);
  });
});

describe('PRPA_IN201306UV02 (the answer)', () => {
  it('a match, a no-match asking for more attributes and an application error are schema-valid', () => {
    const ok = answer({ matches: [MATCH] });
    const nf = answer({
      queryResponseCode: 'NF',
      issues: [{ code: 'LivingSubjectAdministrativeGenderRequested', codeSystem: MORE_ATTRIBUTES_SYSTEM }],
    });
    const ae = answer({
      acknowledgement: 'AE',
      queryResponseCode: 'AE',
      detail: 'the patient demographics supplier did not answer',
      issues: [{ code: 'InternalError', codeSystem: XCPD_ERROR_SYSTEM }],
    });
    const qe = answer({
      acknowledgement: 'AE',
      queryResponseCode: 'QE',
      detail: 'LivingSubjectName … required',
    });
    const ns = answer({
      acknowledgement: 'AE',
      queryResponseCode: 'AE',
      detail: 'deferred',
      detailCode: 'NS250',
    });
    const env = encodeEnvelope({
      action: Action.ITI55Response,
      relatesTo: 'urn:uuid:x',
      body: ok,
      request: false,
    });
    expect(xsdErrors([ok, nf, ae, qe, ns, env], HL7V3_SCHEMA)).toBe('');
    const d = (xml: string) => {
      const doc = parseXml(xml);
      return decodePatientQueryAnswer(doc, doc.root);
    };
    expect(d(ok).matches).toEqual([MATCH]);
    expect(d(ok).targetMessageId).toEqual(QUERY.messageId);
    expect(d(ok).queryId).toEqual(QUERY.queryId);
    expect(ok).toContain('<livingSubjectName>'); // the query echoed
    expect(d(nf)).toMatchObject({
      queryResponseCode: 'NF',
      matches: [],
      issues: [{ code: 'LivingSubjectAdministrativeGenderRequested' }],
    });
    expect(d(ae)).toMatchObject({
      acknowledgement: 'AE',
      detail: 'the patient demographics supplier did not answer',
    });
    expect(ns).toContain('code="NS250"');
  });

  it("reads IPF's public ITI-55 and ITI-47 answers: candidates, custodian, other ids, scores, an empty answer", () => {
    const d = (f: string) => {
      const doc = parseXml(readFileSync(sample(f)));
      return decodePatientQueryAnswer(doc, doc.root);
    };
    const xcpd = d('iti-55/ipf-iti55-response.xml');
    expect(xcpd.acknowledgement).toBe('AA');
    expect(
      xcpd.matches.map((m) => [m.patientId.extension, m.custodian, m.healthDataLocator, m.score]),
    ).toEqual([
      ['34827K410', '1.2.840.114350.1.13.99998.8734', 'SupportsHealthDataLocator', 92],
      ['34827R534', '1.2.840.114350.1.13.99998.8734', 'NotHealthDataLocator', 85],
    ]);
    expect(xcpd.matches[0].otherIds).toHaveLength(2);
    expect(xcpd.matches[0].person).toMatchObject({ gender: 'M', birthTime: '19630804' });
    const pdq = d('iti-47/ipf-iti47-response.xml');
    expect(pdq.matches.length).toBeGreaterThan(1);
    const empty = d('iti-47/ipf-iti47-empty-response.xml');
    expect(empty).toMatchObject({ acknowledgement: 'AA', queryResponseCode: 'OK', matches: [] });
  });

  it('refuses an answer without acknowledgement or queryAck', () => {
    const noAck = parseXml(answer({}).replace(/<acknowledgement>[\s\S]*<\/acknowledgement>/, ''));
    expect(() => decodePatientQueryAnswer(noAck, noAck.root)).toThrow(/acknowledgement/);
    const noQack = parseXml(answer({}).replace(/<queryAck>[\s\S]*<\/queryAck>/, ''));
    expect(() => decodePatientQueryAnswer(noQack, noQack.root)).toThrow(/queryResponseCode/);
  });
});
