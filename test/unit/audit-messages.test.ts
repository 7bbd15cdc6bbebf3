import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import type { AuditSourceInfo, TransactionAuditEvent } from '@xcai/shared/src/audit/event';
import { parseAuditRecord } from '@xcai/shared/src/audit/report';
import {
  sampleSecurityEvents,
  sampleTransactionEvent,
  SAMPLE_HOME,
  transactionMatrix,
  validateWithXsd,
} from '../support/audit';
import { AUDIT_SCHEMA, sample } from '../support/fixtures';

const source: AuditSourceInfo = {
  auditSourceId: 'gw-a.example',
  auditEnterpriseSiteId: '1.2.392.200119.6.102',
  applicationName: 'xcai initiating-gateway',
  hostName: 'gw-a.example',
};

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-msg-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const attr = (xml: string, el: string, name: string): string[] =>
  [...xml.matchAll(new RegExp(`<${el}\\b[^>]*?\\b${name}="([^"]*)"`, 'g'))].map((m) => m[1] as string);

const EXPECTED: Record<string, Record<'requester' | 'responder', [string, string]>> = {
  'ITI-18': { requester: ['110112', 'E'], responder: ['110112', 'E'] },
  'ITI-38': { requester: ['110112', 'E'], responder: ['110112', 'E'] },
  'ITI-43': { requester: ['110107', 'C'], responder: ['110106', 'R'] },
  'ITI-39': { requester: ['110107', 'C'], responder: ['110106', 'R'] },
  'RAD-69': { requester: ['110103', 'C'], responder: ['110104', 'R'] },
  'RAD-75': { requester: ['110103', 'C'], responder: ['110104', 'R'] },
};

describe('buildAuditMessages', () => {
  const matrix = transactionMatrix();

  test('every transaction x side x outcome and every security event validates against dicom2017c.xsd', async () => {
    const xmls: string[] = [];
    for (const m of matrix) xmls.push(...buildAuditMessages(m.event, source));
    for (const e of sampleSecurityEvents()) xmls.push(...buildAuditMessages(e, source));
    expect(xmls.length).toBeGreaterThan(matrix.length);
    for (const x of xmls) expect(x).not.toMatch(/[\r\n]/);
    const r = await validateWithXsd(xmls, AUDIT_SCHEMA, path.join(tmp, 'all'));
    if (!r.ok) console.error(r.output);
    expect(r.ok).toBe(true);
  });

  test('the validator is effective: a record without UserIsRequestor is rejected', async () => {
    const bad = fs.readFileSync(sample('atna/xcai-iti18-audit-technical-user.xml'), 'utf8');
    const r = await validateWithXsd([bad], AUDIT_SCHEMA, path.join(tmp, 'neg'));
    expect(r.ok).toBe(false);
    expect(r.output).toContain('UserIsRequestor');
  });

  test.each(matrix.map((m) => [m.tx, m.side, m.outcome, m.event] as const))(
    '%s %s %s: EventID, action, type code, outcome classes and role swap',
    (tx, side, outcome, event) => {
      const e = event as TransactionAuditEvent;
      const msgs = buildAuditMessages(e, source);
      const retrieve = !tx.endsWith('18') && !tx.endsWith('38');
      expect(msgs).toHaveLength(retrieve && outcome === 'partial' ? 2 : 1);
      for (const x of msgs) {
        const [id, action] = EXPECTED[tx]![side];
        expect(attr(x, 'EventID', 'csd-code')).toEqual([id]);
        expect(attr(x, 'EventIdentification', 'EventActionCode')).toEqual([action]);
        expect(attr(x, 'EventTypeCode', 'csd-code')).toEqual([tx]);
        expect(attr(x, 'EventTypeCode', 'codeSystemName')).toEqual(['IHE Transactions']);
        const v = parseAuditRecord('x', x)!;
        expect(v.transaction).toBe(tx);
        // The requesting system is the requestor; the responder never is.
        expect(v.requestingSystem?.userId).toBe(e.requester.userId);
        expect(v.requestingSystem?.requestor).toBe(true);
        expect(v.respondingSystem?.userId).toBe(e.responder.userId);
        expect(v.respondingSystem?.requestor).toBe(false);
        // IHE role swap: the data provider is the Source (110153).
        const sourceRole = x.match(
          /<ActiveParticipant UserID="([^"]*)"[^>]*><RoleIDCode csd-code="110153"/,
        )?.[1];
        expect(sourceRole).toBe(retrieve ? e.responder.userId : e.requester.userId);
        expect(x).toContain('NetworkAccessPointID="127.0.0.1" NetworkAccessPointTypeCode="2"');
        expect(x).toContain('NetworkAccessPointID="gw-responding.example" NetworkAccessPointTypeCode="1"');
        // Human requestor from XUA.
        expect(v.users.map((u) => u.userId)).toEqual([e.humanRequestors[0]!.userId]);
        expect(x).toContain(
          'csd-code="309343006" codeSystemName="2.16.840.1.113883.6.96" originalText="Physician"',
        );
        expect(v.patients).toEqual(e.patientIds);
        expect(x).toContain(
          'ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"><ParticipantObjectIDTypeCode csd-code="2"',
        );
        expect(x).toContain('<AuditSourceTypeCode csd-code="4"');
      }
      const outcomes = msgs.map((x) => Number(attr(x, 'EventIdentification', 'EventOutcomeIndicator')[0]));
      if (!retrieve) expect(outcomes).toEqual([e.outcome]);
      else expect(outcomes).toEqual(e.groups.map((g) => g.outcome));
      if (outcome !== 'success') expect(msgs.some((x) => x.includes('<EventOutcomeDescription>'))).toBe(true);
    },
  );

  test('query object: ParticipantObjectQuery, QueryEncoding and homeCommunityId details', () => {
    const e = sampleTransactionEvent('ITI-38', 'responder', 'success');
    const [x] = buildAuditMessages(e, source);
    expect(x).toContain('ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="24"');
    expect(x).toContain(
      '<ParticipantObjectIDTypeCode csd-code="ITI-38" codeSystemName="IHE Transactions" originalText="Cross Gateway Query"/>',
    );
    const q = x!.match(/<ParticipantObjectQuery>([^<]*)</)![1]!;
    expect(Buffer.from(q, 'base64').equals(e.query!.requestXml)).toBe(true);
    expect(x).toContain(
      `<ParticipantObjectDetail type="QueryEncoding" value="${Buffer.from('UTF-8').toString('base64')}"/>`,
    );
    expect(x).toContain(
      `<ParticipantObjectDetail type="urn:ihe:iti:xca:2010:homeCommunityId" value="${Buffer.from(SAMPLE_HOME).toString('base64')}"/>`,
    );
  });

  test('document objects: 2/3, IDType 9, Repository Unique Id and ihe:homeCommunityID', () => {
    const [x] = buildAuditMessages(sampleTransactionEvent('ITI-39', 'requester', 'success', 7), source);
    expect(x).toMatch(
      /ParticipantObjectID="1\.2\.392\.200119\.6\.102\.1\.7\.1" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3"><ParticipantObjectIDTypeCode csd-code="9" codeSystemName="RFC-3881" originalText="Report Number"\/><ParticipantObjectDetail type="Repository Unique Id"/,
    );
    expect(x).toContain('type="ihe:homeCommunityID"');
  });

  test('study objects: IDType 110180, SOPClass/Instance description, details; RAD-75 home detail type', () => {
    const [x69] = buildAuditMessages(sampleTransactionEvent('RAD-69', 'responder', 'success', 3), source);
    expect(x69).toContain(
      '<ParticipantObjectIDTypeCode csd-code="110180" codeSystemName="DCM" originalText="Study Instance UID"/>',
    );
    expect(x69).toContain('<SOPClass NumberOfInstances="2"><Instance UID="1.2.392.200119.6.102.2.3.1.1.1"/>');
    expect(x69).toContain('type="Series Instance Unique Id"');
    expect(x69).toContain('type="ihe:DocumentUniqueId"');
    expect(x69).toContain('type="ihe:homeCommunityID"');
    const [x75] = buildAuditMessages(sampleTransactionEvent('RAD-75', 'responder', 'success', 3), source);
    expect(x75).toContain('type="urn:ihe:iti:xca:2010:homeCommunityId"');
  });

  test('RAD requester EventID can follow the RAD TF table literally (110104)', () => {
    const [x] = buildAuditMessages(sampleTransactionEvent('RAD-75', 'requester', 'success'), source, {
      radRequesterEventId: '110104',
    });
    expect(attr(x!, 'EventID', 'csd-code')).toEqual(['110104']);
    expect(attr(x!, 'EventIdentification', 'EventActionCode')).toEqual(['C']);
  });

  test('a retrieve without outcome groups still gives one record with the overall outcome', () => {
    const e = { ...sampleTransactionEvent('ITI-43', 'responder', 'failure'), groups: [] };
    const msgs = buildAuditMessages(e, source);
    expect(msgs).toHaveLength(1);
    expect(attr(msgs[0]!, 'EventIdentification', 'EventOutcomeIndicator')).toEqual(['8']);
  });

  test('hostile strings are escaped, forbidden characters replaced, output stays one valid line', async () => {
    const e = sampleTransactionEvent('ITI-43', 'responder', 'partial');
    e.humanRequestors[0]!.userName = 'Eve "<script>" & \'x\'\n\r\t\u0001\u0000 \ud800';
    e.requester.userId = 'urn:x?a=1&b=<2>';
    e.groups[1]!.description = ']]><!-- & \u0007 \n end';
    e.patientIds = ['X&Y^^^&1.2&ISO'];
    const msgs = buildAuditMessages(e, source);
    // eslint-disable-next-line no-control-regex
    for (const x of msgs) expect(x).not.toMatch(/[\r\n\u0000-\u0008]/);
    const r = await validateWithXsd(msgs, AUDIT_SCHEMA, path.join(tmp, 'hostile'));
    if (!r.ok) console.error(r.output);
    expect(r.ok).toBe(true);
    expect(parseAuditRecord('h', msgs[0]!)!.users[0]!.userName).toBe(
      'Eve "<script>" & \'x\'\n\r\t\ufffd\ufffd \ufffd',
    );
  });

  test('a very large study is reduced (details, then instances) to fit maxRecordBytes and stays valid', async () => {
    const e = sampleTransactionEvent('RAD-75', 'responder', 'success');
    const uids = Array.from({ length: 5000 }, (_, i) => `1.2.392.200119.6.102.2.99.1.1.${i}`);
    e.groups[0]!.studies![0]!.series[0]!.sopInstanceUids = uids;
    const [full] = buildAuditMessages(e, source, { maxRecordBytes: 10_000_000 });
    const [mid] = buildAuditMessages(e, source, { maxRecordBytes: 400_000 });
    const [small] = buildAuditMessages(e, source, { maxRecordBytes: 50_000 });
    expect(Buffer.byteLength(full!)).toBeGreaterThan(400_000);
    expect(Buffer.byteLength(mid!)).toBeLessThanOrEqual(400_000);
    expect(mid).toContain('<Instance UID=');
    expect(mid).not.toContain('ihe:DocumentUniqueId');
    expect(small).not.toContain('<Instance UID=');
    expect(small).toContain('NumberOfInstances="5000"');
    const r = await validateWithXsd([full!, mid!, small!], AUDIT_SCHEMA, path.join(tmp, 'large'));
    expect(r.ok).toBe(true);
  });

  // Issue 16 (soak): a hostile ITI-43 naming 3 000 documents of an unknown community made one 1.5 MB
  // record; the ARR refuses frames over 1 MiB, so it was never delivered and held up every record
  // the gateway spooled after it.
  test('a retrieve of thousands of documents goes into several records, each within maxRecordBytes', async () => {
    const e = sampleTransactionEvent('ITI-43', 'requester', 'failure');
    const g = e.groups[0]!;
    const docs = Array.from({ length: 3000 }, (_, i) => ({
      ...g.documents![0]!,
      documentUniqueId: `1.2.392.200119.6.102.3.99.${i}`,
    }));
    e.groups = [{ ...g, documents: docs, description: 'XDSUnknownCommunity '.repeat(3000) }];
    const msgs = buildAuditMessages(e, source);
    expect(msgs.length).toBeGreaterThan(1);
    for (const x of msgs) expect(Buffer.byteLength(x)).toBeLessThanOrEqual(900_000);
    const ids = msgs.flatMap((x) =>
      [...x.matchAll(/ParticipantObjectID="(1\.2\.392\.200119\.6\.102\.3\.99\.\d+)"/g)].map((m) => m[1]),
    );
    expect(ids.sort()).toEqual(docs.map((d) => d.documentUniqueId).sort());
    for (const x of msgs) expect(/<EventOutcomeDescription>([^<]*)</.exec(x)![1].length).toBeLessThan(2_100);
    const r = await validateWithXsd(msgs.slice(0, 2), AUDIT_SCHEMA, path.join(tmp, 'many-docs'));
    expect(r.ok).toBe(true);
  });

  // Issue 16 (soak): a hostile ITI-18 of 1 MB (a huge patient id) made a 1.3 MB record — over the
  // ARR's 1 MiB frame limit, never delivered, holding up every record after it.
  test('a huge query is recorded cut to 256 KiB, its length noted, within maxRecordBytes', async () => {
    const e = sampleTransactionEvent('ITI-18', 'responder', 'failure');
    const huge = Buffer.from(`<query:AdhocQueryRequest>${'n'.repeat(1_000_000)}</query:AdhocQueryRequest>`);
    e.query = { ...e.query!, requestXml: huge };
    const [x] = buildAuditMessages(e, source);
    expect(Buffer.byteLength(x!)).toBeLessThanOrEqual(900_000);
    const q = /<ParticipantObjectQuery>([^<]*)</.exec(x!)![1];
    expect(Buffer.from(q, 'base64').equals(huge.subarray(0, 256 * 1024))).toBe(true);
    expect(x).toContain(`value="${Buffer.from(String(huge.length)).toString('base64')}"`);
    const r = await validateWithXsd([x!], AUDIT_SCHEMA, path.join(tmp, 'huge-query'));
    expect(r.ok).toBe(true);
  });

  test('security records use the DICOM codes chosen in README.md', () => {
    const byKind = new Map(sampleSecurityEvents().map((e) => [e.kind, buildAuditMessages(e, source)[0]!]));
    const ids = (k: string) => [
      attr(byKind.get(k as never)!, 'EventID', 'csd-code')[0],
      attr(byKind.get(k as never)!, 'EventTypeCode', 'csd-code'),
    ];
    expect(ids('node-authentication-failure')).toEqual(['110113', ['110126']]);
    expect(ids('rejected-async-response')).toEqual(['110113', ['110132']]);
    expect(ids('configuration-loaded')).toEqual(['110113', ['110131', '110129', '110128']]);
    expect(ids('application-start')).toEqual(['110100', ['110120']]);
    expect(ids('application-stop')).toEqual(['110100', ['110121']]);
    expect(byKind.get('node-authentication-failure')).toContain('csd-code="110182"');
    expect(byKind.get('node-authentication-failure')).toContain('ParticipantObjectID="CN=intruder,O=x"');
    expect(byKind.get('application-start')).toContain('csd-code="110150"');
    expect(byKind.get('application-stop')).toContain('csd-code="110151"');
  });

  test('a hand-written ITI-43 Import record is read by the report parser', () => {
    const x = fs.readFileSync(sample('atna/xcai-iti43-import-audit.xml'), 'utf8');
    const v = parseAuditRecord('hand-written', x)!;
    expect(v.eventId).toBe('110107');
    expect(v.transaction).toBe('ITI-43');
    expect(v.documents).toEqual(['1.2.392.200119.6.999.2.4.1001.1']);
    expect(v.respondingSystem?.userId).toBe('https://repository.hie-kanto.example/iti43');
    expect(v.requestingSystem?.userId).toBe('https://consumer.hie-kanto.example/viewer');
    expect(v.users.map((u) => u.userName)).toEqual(['Sato Hanako']);
    expect(v.patients).toEqual(['JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO']);
    expect(v.communities).toEqual(['urn:oid:1.2.392.200119.6.999.2']);
  });
});
