/**
 * Demographic matching, used by the Responding Gateway (ITI-55) to check the candidates its Patient
 * Demographics Supplier returns, and by the reference MPI (ITI-47) to find them.
 *
 * Names: Japanese records carry one person name in kanji (IDE) and kana (SYL), and often romaji
 * (ABC). Each representation is compared only with the same representation, after folding what is
 * the same text written differently (Unicode NFKC: half-width kana, full-width Latin; katakana ↔
 * hiragana; spaces; Latin case). Nothing is transliterated: kanji are never compared with their
 * reading, kana never with romaji. Kanji and kana decide when both sides have them — any that
 * disagree refuse the match (the same kanji read differently may be another person), one that
 * agrees makes it; romaji only decides when neither kanji nor kana can be compared.
 *
 * Birth date: equal to the precision the query gives. Gender: M/F must not contradict. Addresses:
 * postal codes, where both sides have them, must agree with one of the other side's.
 */
import {
  representationOf,
  type Demographics,
  type NameRepresentation,
  type PersonName,
  type PostalAddress,
} from '../hl7v3/model';

/** The text of a name for comparison: family then given parts, folded, without spaces. */
export function nameKey(n: PersonName): string {
  return foldText([...n.family, ...n.given].join(''));
}

/** NFKC, katakana → hiragana, lower case, no whitespace or middle dots. */
export function foldText(s: string): string {
  return s
    .normalize('NFKC')
    .replace(/[\u30a1-\u30f6]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0x60))
    .replace(/[\s\u30fb\u00b7]/g, '')
    .toLowerCase();
}

function keysBy(names: PersonName[]): Map<NameRepresentation, Set<string>> {
  const out = new Map<NameRepresentation, Set<string>>();
  for (const n of names) {
    const k = nameKey(n);
    if (!k) continue;
    const r = representationOf(n);
    const set = out.get(r) ?? new Set<string>();
    set.add(k);
    out.set(r, set);
  }
  return out;
}

export type NameVerdict = 'match' | 'conflict' | 'unknown';

/** Compares the names of a query with a candidate's, representation by representation. */
export function compareNames(query: PersonName[], candidate: PersonName[]): NameVerdict {
  const q = keysBy(query);
  const c = keysBy(candidate);
  const agree = (r: NameRepresentation): boolean | undefined => {
    const a = q.get(r);
    const b = c.get(r);
    if (!a || !b) return undefined;
    return [...a].some((k) => b.has(k));
  };
  const japanese = [agree('IDE'), agree('SYL')].filter((v): v is boolean => v !== undefined);
  if (japanese.includes(false)) return 'conflict';
  if (japanese.includes(true)) return 'match';
  const abc = agree('ABC');
  return abc === undefined ? 'unknown' : abc ? 'match' : 'conflict';
}

function birthDateAgrees(query: string | undefined, candidate: string | undefined): boolean {
  if (!query) return true;
  if (!candidate) return false;
  const q = query.slice(0, 8);
  return candidate.startsWith(q);
}

function postal(a: PostalAddress): string | undefined {
  const d = a.postalCode?.normalize('NFKC').replace(/\D/g, '');
  return d || undefined;
}

function addressesAgree(query: PostalAddress[], candidate: PostalAddress[]): boolean {
  const q = query.map(postal).filter((p): p is string => p !== undefined);
  const c = new Set(candidate.map(postal).filter((p): p is string => p !== undefined));
  if (!q.length || !c.size) return true;
  return q.some((p) => c.has(p));
}

/**
 * Does a candidate's record match what a query asks for? Names must match (not merely not
 * conflict) whenever the query gives any; a query without names matches on the other criteria.
 */
export function demographicsMatch(query: Demographics, candidate: Demographics): boolean {
  if (query.names.length && compareNames(query.names, candidate.names) !== 'match') return false;
  if (!birthDateAgrees(query.birthTime, candidate.birthTime)) return false;
  const g = query.gender;
  const cg = candidate.gender;
  if (g && cg && g !== 'UN' && cg !== 'UN' && g !== cg) return false;
  return addressesAgree(query.addresses, candidate.addresses);
}
