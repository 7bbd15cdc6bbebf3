/**
 * What may leave the community (Responding Gateway): patient consent (R10), break-glass (R11) and
 * the per-community document-class policy (R9), decided before ITI-38, ITI-39, RAD-75 or ITI-55
 * data goes out. The transaction modules call four functions:
 *
 *  - `registryQuery` (ITI-38 plan): the query for our registry — LeafClass where the requester
 *    asked for ObjectRefs, since references alone cannot be screened;
 *  - `screenQueryAnswer` (ITI-38 merge): drops what the caller may not see; a patient whose consent
 *    refuses this community is answered exactly like an unknown patient (R42);
 *  - `screenRetrieve` (ITI-39 / RAD-75 plan): which requested documents are withheld, answered as
 *    unknown documents (XDSDocumentUniqueIdError) before anything is fetched;
 *  - `screenPatientMatch` (ITI-55 merge): a matched patient whose consent refuses this community is
 *    no match, so that patient discovery does not disclose them either.
 *
 * Retrieve requests name no patient: ITI-39 documents are looked up in our registry (GetDocuments);
 * RAD-75 studies through the KOS manifests released to the caller (released.ts). What was withheld
 * and why goes into the transaction's own audit record (notes.ts), never to the requester. Where
 * consent cannot be read (source down), nothing is released and the requester gets an error that
 * says so for any patient alike. Without `consent` in the directory and without `documents` for
 * the caller, nothing is checked.
 */
import { Counter, type Registry } from 'prom-client';
import type { AuditSink } from '../audit/event';
import type { Directory, RemoteCommunity } from '../directory/types';
import { ErrorCode } from '../ebrim/error-codes';
import { adhocQueryRequestXml, type AdhocQueryRequest } from '../ebrim/query';
import { registryError, type RegistryError } from '../ebrim/status';
import { isPatientQuery, queryPatientId } from '../ebrim/stored-query';
import type { Ctx } from '../pipeline/transaction';
import type { Redis } from '../redis/client';
import type { QueryResult } from '../transactions/query';
import type { Logger } from '../util/log';
import type { DocumentRequest, ImagingDocumentRef } from '../xds/retrieve';
import { iiToPatientId, patientCx } from '../hl7v3/cx';
import type { PatientQueryAnswer } from '../hl7v3/patient-response';
import { noMatch } from '../identity/respond';
import { NS } from '../xml/ns';
import { escapeAttr } from '../xml/write';
import { BreakGlassAlerts, emergencyPurpose } from './break-glass';
import { Consent } from './consent';
import { objectFacts, type ObjectFacts } from './entries';
import { noteWithheld, releaseNote } from './notes';
import { consentVerdict, describeVerdict, documentRestriction } from './policy';
import { documentsByUniqueId, LookupFailed } from './registry';
import {
  MemoryReleasedStudies,
  RedisReleasedStudies,
  type ReleasedStudies,
  type ReleasedStudy,
} from './released';

export interface DisclosureOptions {
  directory: Directory;
  audit: AuditSink;
  log: Logger;
  /** Shared by replicas for the released studies; memory without it. */
  redis?: Redis;
  now?: () => Date;
}

/** The disclosure rules of one Responding Gateway process. */
export class Disclosure {
  readonly consent?: Consent;
  readonly released: ReleasedStudies;
  readonly alerts: BreakGlassAlerts;
  readonly log: Logger;
  readonly now: () => Date;
  private readonly counters: Counter[];
  readonly decisions: Counter;
  readonly withheld: Counter;

  constructor(readonly o: DisclosureOptions) {
    this.log = o.log.child({ component: 'disclosure' });
    this.now = o.now ?? (() => new Date());
    if (o.directory.consent) this.consent = new Consent(o.directory.consent, this.log, this.now);
    this.released = o.redis ? new RedisReleasedStudies(o.redis) : new MemoryReleasedStudies();
    this.decisions = new Counter({
      name: 'xcai_consent_decisions_total',
      help: 'Consent decisions per calling community: permit, deny, break_glass, unavailable.',
      labelNames: ['community', 'decision'],
      registers: [],
    });
    this.withheld = new Counter({
      name: 'xcai_withheld_objects_total',
      help: 'Registry objects and documents withheld from a community, by reason (consent, document_class).',
      labelNames: ['community', 'reason'],
      registers: [],
    });
    const breakGlass = new Counter({
      name: 'xcai_break_glass_total',
      help: 'Accesses where an emergency PurposeOfUse overrode a refusal by consent (break-glass), per community.',
      labelNames: ['community'],
      registers: [],
    });
    this.counters = [this.decisions, this.withheld, breakGlass];
    this.alerts = new BreakGlassAlerts({
      settings: o.directory.breakGlass,
      audit: o.audit,
      log: this.log,
      counter: breakGlass,
    });
  }

  registerMetrics(registry: Registry): void {
    for (const c of this.counters) registry.registerMetric(c);
  }

  /** Whether anything is checked for this caller. */
  applies(ctx: Ctx): boolean {
    return this.consent !== undefined || ctx.caller.community?.documents !== undefined;
  }
}

/** Whether the directory asks for disclosure rules at all (a Responding Gateway builds them then). */
export function needsDisclosure(d: Directory): boolean {
  return d.consent !== undefined || d.communities.some((c) => c.documents !== undefined);
}

interface Decision {
  release: boolean;
}

/** One transaction's view of the rules: its caller's policies, decisions made once per patient. */
class Screening {
  private readonly memo = new Map<string, Promise<Decision>>();
  readonly community: RemoteCommunity | undefined;
  readonly key: string;

  constructor(
    readonly d: Disclosure,
    readonly ctx: Ctx,
    readonly tx: string,
  ) {
    this.community = ctx.caller.community;
    this.key = this.community?.homeCommunityId ?? 'any';
  }

  decide(patientId: string): Promise<Decision> {
    let p = this.memo.get(patientId);
    if (!p) {
      p = this.decideNow(patientId);
      this.memo.set(patientId, p);
    }
    return p;
  }

  private async decideNow(patientId: string): Promise<Decision> {
    const { d, ctx } = this;
    const policy = this.community?.consent ?? d.o.directory.consent?.policy;
    if (!d.consent || !policy) return { release: true };
    let acknowledged: string[];
    try {
      acknowledged = await d.consent.acknowledged(patientId, ctx);
    } catch (e) {
      d.decisions.inc({ community: this.key, decision: 'unavailable' });
      throw e;
    }
    const v = consentVerdict(acknowledged, policy);
    if (v.permit) {
      d.decisions.inc({ community: this.key, decision: 'permit' });
      return { release: true };
    }
    const purpose = policy.breakGlass ? emergencyPurpose(ctx, d.o.directory.breakGlass, d.now()) : undefined;
    if (purpose) {
      d.decisions.inc({ community: this.key, decision: 'break_glass' });
      const overridden = describeVerdict(v);
      releaseNote(ctx).breakGlass.push(
        `consent overridden for ${purpose.code}${purpose.codeSystem ? `^^${purpose.codeSystem}` : ''} (${overridden})`,
      );
      d.alerts.raise(ctx, this.tx, { patientId, purpose, overridden });
      return { release: true };
    }
    d.decisions.inc({ community: this.key, decision: 'deny' });
    noteWithheld(ctx, `consent-denied: ${describeVerdict(v)}`);
    d.log.info('consent refused release', { community: this.key, tx: this.tx, basis: v.basis });
    return { release: false };
  }

  restriction(f: ObjectFacts): string | undefined {
    const why = documentRestriction(f, this.community?.documents);
    if (why) {
      noteWithheld(this.ctx, `document-class: ${why}`);
      this.d.withheld.inc({ community: this.key, reason: 'document_class' });
    }
    return why;
  }

  unavailable(e: LookupFailed): void {
    noteWithheld(this.ctx, `consent-unavailable: ${e.message}`);
    this.d.log.warn('nothing released: the disclosure rules could not be checked', {
      community: this.key,
      tx: this.tx,
      reason: e.message,
    });
  }

  noteReleased(entries: ObjectFacts[]): void {
    const studies: ReleasedStudy[] = [];
    for (const f of entries)
      if (f.uniqueId)
        for (const s of f.studyUids) studies.push({ studyUid: s, documentUniqueId: f.uniqueId });
    if (studies.length === 0) return;
    this.d.released.note(this.key, studies).catch((e: Error) =>
      this.d.log.warn('released studies not recorded: RAD-75 for them will be refused', {
        reason: e.message,
      }),
    );
  }
}

function screening(ctx: Ctx, tx: string): Screening | undefined {
  const d = ctx.gateway.disclosure;
  return d?.applies(ctx) ? new Screening(d, ctx, tx) : undefined;
}

/** ITI-38: the query our registry gets (the request relayed without `home`; LeafClass when screening). */
export function registryQuery(req: AdhocQueryRequest, ctx: Ctx): string {
  const leaf = req.returnType === 'ObjectRef' && ctx.gateway.disclosure?.applies(ctx);
  return adhocQueryRequestXml(req, undefined, leaf ? 'LeafClass' : undefined);
}

/**
 * ITI-38: the answer without what the caller may not see. `refused`: the query's patient may not be
 * disclosed to the caller — answer it as an unknown patient.
 */
export async function screenQueryAnswer(
  req: AdhocQueryRequest,
  res: QueryResult,
  ctx: Ctx,
): Promise<{ res: QueryResult; refused: boolean }> {
  const s = screening(ctx, 'ITI-38');
  if (!s) return { res, refused: false };
  const patient = req.query && isPatientQuery(req.query) ? queryPatientId(req.query, req.params) : undefined;
  const facts = res.objects.map((o) => objectFacts(o));
  const refusedPatients = new Set<string>();
  try {
    if (patient !== undefined && !(await s.decide(patient)).release) {
      s.d.withheld.inc({ community: s.key, reason: 'consent' }, res.objects.length);
      return { res: { ...res, objects: [] }, refused: true };
    }
    const others = new Set(facts.map((f) => f.patientId).filter((p): p is string => !!p));
    for (const p of others) if (!(await s.decide(p)).release) refusedPatients.add(p);
  } catch (e) {
    if (!(e instanceof LookupFailed)) throw e;
    s.unavailable(e);
    return {
      res: {
        ...res,
        status: 'Failure',
        objects: [],
        errors: [registryError(ErrorCode.RegistryError, 'consent could not be checked; try again later')],
      },
      refused: false,
    };
  }
  const dropped = new Set<string>();
  const keep = facts.map((f) => {
    const byConsent = f.patientId !== undefined && refusedPatients.has(f.patientId);
    if (byConsent) s.d.withheld.inc({ community: s.key, reason: 'consent' });
    const out = byConsent || s.restriction(f) !== undefined;
    if (out && f.id) dropped.add(f.id);
    return !out;
  });
  // What linked or classified a withheld object goes with it.
  facts.forEach((f, i) => {
    if (!keep[i]) return;
    if ((f.sourceObject && dropped.has(f.sourceObject)) || (f.targetObject && dropped.has(f.targetObject)))
      keep[i] = false;
  });
  const kept = facts.filter((_, i) => keep[i]);
  s.noteReleased(kept.filter((f) => f.kind === 'document'));
  const home = ctx.gateway.directory.homeCommunityId;
  const objects = res.objects.filter((_, i) => keep[i]);
  return {
    res: {
      ...res,
      objects:
        req.returnType === 'ObjectRef'
          ? kept.filter((f) => f.id).map((f) => objectRef(f.id as string, home))
          : objects,
    },
    refused: false,
  };
}

function objectRef(id: string, home: string): string {
  return `<rim:ObjectRef xmlns:rim="${NS.rim}" id="${escapeAttr(id)}" home="${escapeAttr(home)}"/>`;
}

/**
 * ITI-55: our answer, unless its one match may not be disclosed to the caller. Matches are returned
 * "after consideration of all policy constraints" (ITI TF-2 3.55.4.1.3.1): a patient whose consent
 * refuses the caller — or whose consent cannot be read — is no match, exactly like a person our MPI
 * does not know (R42). `withheld`: that patient, for our own audit record.
 */
export async function screenPatientMatch(
  answer: PatientQueryAnswer,
  ctx: Ctx,
): Promise<{ answer: PatientQueryAnswer; withheld?: string }> {
  const s = screening(ctx, 'ITI-55');
  const id = answer.matches.length === 1 ? iiToPatientId(answer.matches[0].patientId) : undefined;
  if (!s || !id) return { answer };
  const patient = patientCx(id);
  try {
    if ((await s.decide(patient)).release) return { answer };
    s.d.withheld.inc({ community: s.key, reason: 'consent' });
  } catch (e) {
    if (!(e instanceof LookupFailed)) throw e;
    s.unavailable(e);
  }
  return { answer: noMatch(), withheld: patient };
}

/** Which documents of a retrieve are withheld, and the error that answers each. */
export interface ReleaseCheck {
  withheld(d: DocumentRequest): RegistryError | undefined;
}

const NOTHING_WITHHELD: ReleaseCheck = { withheld: () => undefined };

/** What an unknown document (or SOP Instance) gets — and so every withheld one (located in the merge). */
function unknownDocument(d: DocumentRequest, imaging: boolean): RegistryError {
  return registryError(
    ErrorCode.DocumentUniqueIdError,
    `${imaging ? 'SOP Instance' : 'document'} ${d.documentUniqueId} is not known`,
    undefined,
    { document: d.documentUniqueId },
  );
}

/**
 * ITI-39 (documents) / RAD-75 (imaging): checks the requested documents of our community before
 * anything is fetched. Documents of other communities are left to the routing.
 */
export async function screenRetrieve(
  docs: DocumentRequest[] | ImagingDocumentRef[],
  ctx: Ctx,
  tx: 'ITI-39' | 'RAD-75',
): Promise<ReleaseCheck> {
  const s = screening(ctx, tx);
  const own = ctx.gateway.directory.homeCommunityId;
  const ours = (docs as DocumentRequest[]).filter((d) => d.homeCommunityId === own);
  if (!s || ours.length === 0) return NOTHING_WITHHELD;
  const imaging = tx === 'RAD-75';
  const out = new Map<DocumentRequest, RegistryError>();
  try {
    if (imaging) await screenStudies(s, ours as ImagingDocumentRef[], out);
    else await screenDocuments(s, ours, out);
  } catch (e) {
    if (!(e instanceof LookupFailed)) throw e;
    s.unavailable(e);
    const error = (d: DocumentRequest) =>
      registryError(
        ErrorCode.RepositoryError,
        `document ${d.documentUniqueId}: consent could not be checked; try again later`,
        undefined,
        { document: d.documentUniqueId },
      );
    return { withheld: (d) => (d.homeCommunityId === own ? error(d) : undefined) };
  }
  return { withheld: (d) => out.get(d) };
}

async function screenDocuments(
  s: Screening,
  ours: DocumentRequest[],
  out: Map<DocumentRequest, RegistryError>,
): Promise<void> {
  const entries = await documentsByUniqueId(
    s.ctx,
    ours.map((d) => d.documentUniqueId),
  );
  const released: ObjectFacts[] = [];
  for (const d of ours) {
    const f = entries.get(d.documentUniqueId);
    let allowed = f?.patientId !== undefined && s.restriction(f) === undefined;
    if (allowed && f?.patientId && !(await s.decide(f.patientId)).release) {
      s.d.withheld.inc({ community: s.key, reason: 'consent' });
      allowed = false;
    }
    if (allowed && f?.patientId) {
      releaseNote(s.ctx).patients.add(f.patientId);
      released.push(f);
    } else out.set(d, unknownDocument(d, false));
  }
  s.noteReleased(released);
}

async function screenStudies(
  s: Screening,
  ours: ImagingDocumentRef[],
  out: Map<DocumentRequest, RegistryError>,
): Promise<void> {
  const studies = [...new Set(ours.map((d) => d.studyInstanceUid))];
  const through = await s.d.released.lookup(s.key, studies);
  const entries = await documentsByUniqueId(s.ctx, [...through.values()].flat());
  const allowed = new Set<string>();
  for (const study of studies) {
    for (const uid of through.get(study) ?? []) {
      const f = entries.get(uid);
      if (!f?.patientId || !f.studyUids.includes(study)) continue;
      if (s.restriction(f) !== undefined) continue;
      if (!(await s.decide(f.patientId)).release) {
        s.d.withheld.inc({ community: s.key, reason: 'consent' });
        continue;
      }
      releaseNote(s.ctx).patients.add(f.patientId);
      allowed.add(study);
      break;
    }
  }
  for (const d of ours) if (!allowed.has(d.studyInstanceUid)) out.set(d, unknownDocument(d, true));
}
