/**
 * What `RegistryError/@location` says, by actor and transaction. Errors are made knowing what they are
 * about (`document`, `community`: see RegistryError); each transaction locates its errors once, in its
 * merge, by one of three rules:
 *
 *  - `responder` — Responding Gateway (ITI-38, ITI-39) and Responding Imaging Gateway (RAD-75): our own
 *    homeCommunityId on every error, whatever our registry, repository or Imaging Document Source put
 *    there. ITI TF-2 3.38.4.1.3 ("every RegistryError element returned in the response shall have the
 *    location attribute set to one of the homeCommunityIds of the Responding Gateway"), 3.39.4.1.3,
 *    RAD TF-3 4.75 (Gazelle ITI39-012, RAD75-004). The document concerned goes in codeContext.
 *  - `community` — Initiating Gateway (ITI-18, ITI-43): the homeCommunityId of the community the error
 *    is about (the one that failed or answered it, or the unknown one asked for), ours for our own
 *    registry and repositories and for errors in the request itself. This is what other initiating
 *    gateways and consumers rely on to tell which community failed (the XCA convention; ITI-43's own
 *    per-document rule, ITI TF-2 3.43.5, is not applied here: see docs/integration-statement.md).
 *  - `document` — Initiating Imaging Gateway (RAD-69): the DocumentUniqueId (SOP Instance UID) of the
 *    requested document the error is about (RAD TF-3 4.69.5, Gazelle RAD69-016; ITI TF-2 3.43.5),
 *    including XDSUnknownCommunity and XDSUnavailableCommunity, which are reported per document; the
 *    community is named in codeContext (as ITI TF-2 3.18.4.1.3 asks for XDSUnavailableCommunity). An
 *    error about no single document gets the community's homeCommunityId, else ours.
 */
import type { RegistryError } from '../ebrim/status';
import type { Target } from '../pipeline/transaction';
import type { DocumentRequest } from '../xds/retrieve';

export type LocationRule = 'responder' | 'community' | 'document';

/** A transaction result with its errors located by `rule`. */
export function locate<R extends { errors: RegistryError[] }>(
  res: R,
  rule: LocationRule,
  ownHome: string,
): R {
  return { ...res, errors: located(res.errors, rule, ownHome) };
}

/** The errors with their location set by `rule`; codeContext names the document and community concerned. */
export function located(errors: RegistryError[], rule: LocationRule, ownHome: string): RegistryError[] {
  return errors.map((e) => {
    const location =
      rule === 'responder'
        ? ownHome
        : rule === 'community'
          ? (e.community ?? ownHome)
          : (e.document ?? e.community ?? ownHome);
    return { ...e, location, codeContext: naming(e, ownHome) };
  });
}

function naming(e: RegistryError, ownHome: string): string {
  let text = e.codeContext;
  if (e.document && !mentionsUid(text, e.document)) text = `document ${e.document}: ${text}`;
  if (e.community && e.community !== ownHome && !text.includes(e.community))
    text = `${text} (community ${e.community})`;
  return text;
}

/**
 * The documents of a sub-request, found by the UIDs an error's text names: one pass over the text,
 * not one search per requested document (a RAD-69 of 20,000 instances may come back with 20,000
 * errors).
 */
export class RequestedDocuments {
  private readonly ids = new Set<string>();
  /** Ids that are not dotted numbers (an ITI-43 uniqueId may be anything): searched one by one. */
  private readonly other: string[] = [];

  constructor(requested: Iterable<DocumentRequest>) {
    for (const r of requested) {
      this.ids.add(r.documentUniqueId);
      if (!DOTTED.test(r.documentUniqueId)) this.other.push(r.documentUniqueId);
    }
  }

  has(id: string | undefined): id is string {
    return id !== undefined && this.ids.has(id);
  }

  /** The requested ids `text` contains as whole UIDs (see mentionsUid). */
  namedIn(text: string): Set<string> {
    const named = new Set<string>();
    for (const m of text.matchAll(UID_IN_TEXT)) if (this.ids.has(m[0])) named.add(m[0]);
    for (const id of this.other) if (mentionsUid(text, id)) named.add(id);
    return named;
  }
}

const DOTTED = /^\d+(?:\.\d+)*$/;
// A whole UID: not preceded by a digit or '.', and (greedy) not followed by a digit or '.digit'.
const UID_IN_TEXT = /(?<![\d.])\d+(?:\.\d+)*/g;

/**
 * An error relayed from a sub-answer, told what it is about: the requested document its location names,
 * else the one requested document its codeContext names (a Responding Imaging Gateway that follows
 * RAD75-004 puts its homeCommunityId in location and the instance in codeContext); `community` when the
 * sub-answer came from another community.
 */
export function relayedError(
  e: RegistryError,
  requested: RequestedDocuments,
  community?: string,
): RegistryError {
  return { ...e, document: e.document ?? documentNamed(e, requested), community: e.community ?? community };
}

function documentNamed(e: RegistryError, requested: RequestedDocuments): string | undefined {
  if (requested.has(e.location)) return e.location;
  const named = requested.namedIn(e.codeContext);
  return named.size === 1 ? [...named][0] : undefined;
}

/** Whether `text` contains `uid` as a whole UID (not as the start of a longer one, nor its tail). */
export function mentionsUid(text: string, uid: string): boolean {
  if (!uid) return false;
  const digit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
  for (let at = text.indexOf(uid); at >= 0; at = text.indexOf(uid, at + 1)) {
    const before = text[at - 1];
    const end = at + uid.length;
    // a UID never ends with '.', so "…1.2.3." is 1.2.3 at the end of a sentence
    const continues = digit(text[end]) || (text[end] === '.' && digit(text[end + 1]));
    if (!digit(before) && before !== '.' && !continues) return true;
  }
  return false;
}

/** The homeCommunityId a sub-request's target stands for, when it is another community. */
export function communityOf(t: Target): string | undefined {
  return t.kind === 'community' ? t.location : undefined;
}
