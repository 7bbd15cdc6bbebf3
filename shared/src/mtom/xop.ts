import { MtomError } from './errors';
import { stripAngles } from './multipart';
import type { MimePart } from './types';

/** Decodes each run of %XX escapes that forms valid UTF-8; leaves anything else as it is. */
function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/**
 * The Content-ID an xop:Include `href` points to: `cid:abc%40x` → `abc@x`. Also takes unescaped
 * hrefs (`cid:abc@x`) and WCF-style ids (`cid:http://tempuri.org/1/638509440267508087`).
 * Liberal: an href without the `cid:` scheme is taken as the id itself.
 * @throws MtomError 'bad-href' for an empty id.
 */
export function cidFromHref(href: string): string {
  let s = href.trim();
  if (/^cid:/i.test(s)) s = s.slice(4);
  const id = percentDecode(stripAngles(s));
  if (id.length === 0)
    throw new MtomError('bad-href', `xop:Include href names no Content-ID: ${JSON.stringify(href)}`);
  return id;
}

/**
 * Normal form for matching an href to a Content-ID; apply it to both sides. Removes <>, a `cid:`
 * prefix and %XX escapes (safely), keeps case (Content-IDs are compared exactly).
 */
export function contentIdKey(id: string): string {
  let s = stripAngles(id);
  if (/^cid:/i.test(s)) s = s.slice(4);
  return percentDecode(s);
}

/** The `cid:` URL for a Content-ID (RFC 2392), escaping only what a URL cannot carry. */
export function cidHref(contentId: string): string {
  const id = stripAngles(contentId);
  return `cid:${id.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/gu, (c) => encodeURIComponent(c))}`;
}

/**
 * Matches xop:Include hrefs to MIME parts as the parts stream past, and reports what does not match:
 * - `expect(href)` for each xop:Include in the envelope (a second Include naming the same id →
 *   MtomError 'duplicate-include');
 * - `accept(partOrContentId)` for each attachment part: returns the href it satisfies, or null for a
 *   part no Include names (a dangling part, also listed by `dangling()`); a second part with a
 *   Content-ID already seen → MtomError 'duplicate-content-id';
 * - `remaining()`: hrefs no part has satisfied yet (at the end of the message: missing parts).
 */
export class XopResolver {
  /** Content-ID key → the href naming it, or null once a part has satisfied it. */
  private readonly expected = new Map<string, string | null>();
  /** Keys of parts no Include names (rare): kept to find a repeated Content-ID among them too. */
  private readonly seen = new Set<string>();
  private readonly unreferenced: string[] = [];

  expect(href: string): string {
    const key = contentIdKey(cidFromHref(href));
    if (this.expected.has(key)) {
      throw new MtomError(
        'duplicate-include',
        `two xop:Include elements name the Content-ID ${JSON.stringify(key)}`,
      );
    }
    this.expected.set(key, href);
    return key;
  }

  /** A matched part costs no memory beyond its Include's entry (many parts, one transaction). */
  accept(part: MimePart | string): string | null {
    const raw = typeof part === 'string' ? part : part.headers.contentId;
    const key = raw === undefined ? '' : contentIdKey(raw);
    if (key === '') {
      this.unreferenced.push('');
      return null;
    }
    const href = this.expected.get(key);
    if (href === null || this.seen.has(key)) {
      throw new MtomError(
        'duplicate-content-id',
        `two MIME parts have the Content-ID ${JSON.stringify(key)}`,
      );
    }
    if (href === undefined) {
      this.seen.add(key);
      this.unreferenced.push(key);
      return null;
    }
    this.expected.set(key, null);
    return href;
  }

  remaining(): string[] {
    const out: string[] = [];
    for (const href of this.expected.values()) if (href !== null) out.push(href);
    return out;
  }

  dangling(): string[] {
    return [...this.unreferenced];
  }
}
