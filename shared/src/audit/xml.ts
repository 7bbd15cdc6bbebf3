/**
 * Minimal XML escaping for the audit module. Every character that could break the single-line
 * syslog framing (CR, LF, TAB) is written as a character reference, so a built AuditMessage never
 * contains a raw line break. Characters XML 1.0 forbids (C0 controls other than TAB/CR/LF, lone
 * surrogates, U+FFFE/U+FFFF) are replaced with U+FFFD rather than emitted.
 */

const FORBIDDEN =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
// Fast path: most values (UIDs, URIs, codes) contain none of these.
// eslint-disable-next-line no-control-regex
const NEEDS_WORK = /[\u0000-\u001F&<>"'\uD800-\uDFFF\uFFFE\uFFFF]/;
const ATTR_SPECIAL = /[&<>"'\t\n\r]/g;
const TEXT_SPECIAL = /[&<>\t\n\r]/g;

const ENTITY: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

function clean(value: string): string {
  return value.replace(FORBIDDEN, '\uFFFD');
}

/** Escapes a string for use inside a double-quoted attribute value. */
export function escapeAttr(value: string): string {
  if (!NEEDS_WORK.test(value)) return value;
  return clean(value).replace(ATTR_SPECIAL, (c) => ENTITY[c] ?? c);
}

/** Escapes a string for use as element text. */
export function escapeText(value: string): string {
  if (!NEEDS_WORK.test(value)) return value;
  return clean(value).replace(TEXT_SPECIAL, (c) => ENTITY[c] ?? c);
}

/** Attribute list → ` a="v" b="w"`; undefined / empty-string values are left out. */
export function attrs(list: [string, string | number | boolean | undefined][]): string {
  let out = '';
  for (const [name, value] of list) {
    if (value === undefined || value === '') continue;
    out += ` ${name}="${escapeAttr(String(value))}"`;
  }
  return out;
}

/** `<name attrs/>` or `<name attrs>children</name>`. */
export function element(
  name: string,
  attributes: [string, string | number | boolean | undefined][],
  children = '',
): string {
  const a = attrs(attributes);
  return children === '' ? `<${name}${a}/>` : `<${name}${a}>${children}</${name}>`;
}
