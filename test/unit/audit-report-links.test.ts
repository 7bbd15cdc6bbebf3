/**
 * The per-patient access report follows XCPD correlations: a successful ITI-55 record names the id
 * asked with and the id the other community answered, so the patient's records under that id are
 * part of its history; a refused answer (outcome 4) links nothing.
 */
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import { correlatedPatientIds, parseAuditRecord } from '@xcai/shared/src/audit/report';
import type { EventOutcome, TransactionAuditEvent } from '@xcai/shared';

const A = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const B = 'B-4711^^^&1.3.6.1.4.1.21367.13.20.2000&ISO';
const C = 'C-20031^^^&1.3.6.1.4.1.21367.13.20.3000&ISO';
const OTHER = 'X-1^^^&2.999.9&ISO';

function view(transaction: 'ITI-55' | 'ITI-38', patientIds: string[], outcome: EventOutcome = 0) {
  const e: TransactionAuditEvent = {
    kind: 'transaction',
    transaction,
    side: 'requester',
    eventDateTime: new Date(),
    requester: { userId: 'http://www.w3.org/2005/08/addressing/anonymous' },
    responder: { userId: 'https://gw.example/x' },
    humanRequestors: [],
    patientIds,
    query: { storedQueryId: 'q@1.2', requestXml: Buffer.from('<q/>') },
    outcome,
    groups: [],
  };
  const [xml] = buildAuditMessages(e, { auditSourceId: 'test' });
  return parseAuditRecord(String(Math.random()), xml)!;
}

it('follows successful ITI-55 correlations, transitively, and not refused ones', () => {
  const views = [
    view('ITI-55', [A, B]),
    view('ITI-55', [B, C]),
    view('ITI-55', [A, OTHER], 4), // refused: another assigning authority
    view('ITI-38', [OTHER]),
  ];
  expect(correlatedPatientIds(views, A)).toEqual([A, B, C]);
  expect(correlatedPatientIds(views, C)).toEqual([C, B, A]);
  expect(correlatedPatientIds(views, OTHER)).toEqual([OTHER]);
  // The assigning authority may be left out of the query, as elsewhere in the report.
  expect(correlatedPatientIds(views, 'B-4711')).toEqual(['B-4711', A, C]);
});
