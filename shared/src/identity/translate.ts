/**
 * A consumer's query carried into another patient identity domain: the AdhocQueryRequest relayed
 * unchanged except for `home` and the patient id parameter, which becomes the community's id.
 */
import type { TransactionAuditEvent } from '../audit/event';
import type { AdhocQueryRequest } from '../ebrim/query';
import { patientParamOf, quoteParam } from '../ebrim/stored-query';
import { NS } from '../xml/ns';
import { escapeText, relayElement } from '../xml/write';

/** The request as `adhocQueryRequestXml` relays it, with `patientId` as the patient parameter's value. */
export function adhocQueryRequestFor(
  req: AdhocQueryRequest,
  home: string | undefined,
  patientId: string,
): string {
  const q = req.element.child(NS.rim, 'AdhocQuery');
  if (!q || !req.query) throw new Error('unreachable: a patient query was checked at decode');
  const param = patientParamOf(req.query);
  const slot = q.childrenNamed(NS.rim, 'Slot').find((s) => s.attr('name') === param);
  const value = slot?.child(NS.rim, 'ValueList')?.child(NS.rim, 'Value');
  if (!value) throw new Error('unreachable: the patient parameter was checked at validation');
  return relayElement(req.doc, req.element, {
    descendantEdits: new Map([[q, { home: home ?? null }]]),
    contentEdits: new Map([[value, escapeText(quoteParam(patientId))]]),
  });
}

/**
 * The requester-side ITI-38 records name the patient id each community was asked with (the
 * consumer's id is in the ITI-18 record; the ITI-55 record holds both, R38).
 */
export function withTranslatedPatients(
  events: TransactionAuditEvent[],
  sentIds: ReadonlyMap<string, string>,
): TransactionAuditEvent[] {
  for (const e of events) {
    if (e.transaction !== 'ITI-38' || e.side !== 'requester') continue;
    const id = e.query?.homeCommunityId ? sentIds.get(e.query.homeCommunityId) : undefined;
    if (id) e.patientIds = [id];
  }
  return events;
}
