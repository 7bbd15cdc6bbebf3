/**
 * What the disclosure rules withheld or overrode in one transaction, for that transaction's own
 * audit record (the requester is told nothing: a refusal looks like an unknown patient or
 * document). The served record gets the reasons in EventOutcomeDescription — `consent-denied: …`,
 * `document-class: …`, `consent-unavailable: …` — and a minor-failure outcome when something was
 * withheld; a break-glass access is tagged `break-glass: …` (its PurposeOfUse is in the record too).
 */
import type { TransactionAuditEvent } from '../audit/event';

export interface ReleaseNote {
  /** Reason lines, each counted once per distinct text. */
  withheld: Map<string, number>;
  breakGlass: string[];
  /** Patients of the documents a retrieve released (retrieve requests name none; the record does). */
  patients: Set<string>;
}

const notes = new WeakMap<object, ReleaseNote>();

/** The note of the transaction whose context this is (created on first use). */
export function releaseNote(ctx: object): ReleaseNote {
  let n = notes.get(ctx);
  if (!n) {
    n = { withheld: new Map(), breakGlass: [], patients: new Set() };
    notes.set(ctx, n);
  }
  return n;
}

export function noteWithheld(ctx: object, reason: string, count = 1): void {
  const n = releaseNote(ctx).withheld;
  n.set(reason, (n.get(reason) ?? 0) + count);
}

/** Adds the note of `ctx` to the record of the transaction served (no-op when nothing was noted). */
export function withReleaseNote(ev: TransactionAuditEvent, ctx: object): TransactionAuditEvent {
  const n = notes.get(ctx);
  if (!n) return ev;
  const patientIds = ev.patientIds.length > 0 ? ev.patientIds : [...n.patients];
  if (n.withheld.size === 0 && n.breakGlass.length === 0) return { ...ev, patientIds };
  const tag = n.breakGlass.map((b) => `break-glass: ${b}`);
  const withheld = [...n.withheld].map(([reason, count]) => (count > 1 ? `${reason} (${count}×)` : reason));
  const join = (...parts: (string | undefined)[]) =>
    parts
      .filter((p) => p)
      .join('; ')
      .slice(0, 1000) || undefined;
  return {
    ...ev,
    patientIds,
    outcome: withheld.length > 0 && ev.outcome === 0 ? 4 : ev.outcome,
    outcomeDescription: join(...tag, ...withheld, ev.outcomeDescription),
    // Delivered objects carry the break-glass tag; withheld ones are among the failed.
    groups: ev.groups.map((g) => ({
      ...g,
      description: g.outcome === 0 ? join(...tag, g.description) : join(...tag, ...withheld, g.description),
    })),
  };
}
