/** A parsed Content-Type value: lower-cased `type/subtype` and parameters (lower-cased names). */
export interface MediaType {
  type: string;
  params: Record<string, string>;
}

/**
 * Parses `type/subtype; name=value; name="quoted \"value\""` liberally: extra spaces, empty
 * parameters and trailing semicolons are ignored, quoted strings may hold `;`, a missing closing
 * quote ends at the end of the header. The first occurrence of a parameter wins. Returns null if there
 * is no `type/subtype`.
 */
export function parseMediaType(header: string): MediaType | null {
  const s = header;
  let i = s.indexOf(';');
  if (i < 0) i = s.length;
  const type = s.slice(0, i).trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type)) return null;
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  while (i < s.length) {
    i++; // past ';'
    const eq = s.indexOf('=', i);
    const semi = s.indexOf(';', i);
    if (eq < 0 || (semi >= 0 && semi < eq)) {
      // A parameter without '=': skip it.
      i = semi < 0 ? s.length : semi;
      continue;
    }
    const name = s.slice(i, eq).trim().toLowerCase();
    let j = eq + 1;
    while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
    let value: string;
    if (s[j] === '"') {
      let v = '';
      j++;
      while (j < s.length && s[j] !== '"') {
        if (s[j] === '\\' && j + 1 < s.length) j++;
        v += s[j];
        j++;
      }
      value = v;
      const next = s.indexOf(';', j);
      i = next < 0 ? s.length : next;
    } else {
      const next = s.indexOf(';', j);
      i = next < 0 ? s.length : next;
      value = s.slice(j, i).trim();
    }
    if (name && !(name in params)) params[name] = value;
  }
  return { type, params };
}

/** Quotes a parameter value for a header (backslash-escaping `"` and `\`). */
export function quoteMimeParam(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
