import { createHash } from 'node:crypto';

/**
 * A Redis Cluster hash tag (`{…}`, the only part of a key the slot is computed from) derived from
 * `value`: keys that must be read or written together carry the same tag, so they share one slot.
 * Hashed, so no identifier shows in the key.
 */
export function hashTag(value: string): string {
  return `{${createHash('sha256').update(value).digest('base64url').slice(0, 16)}}`;
}

/** Splits `items` by the hash tag of their keys (one group per slot), keeping each item's index. */
export function bySlotTag<T>(items: T[], keyOf: (t: T) => string): Map<string, { item: T; at: number }[]> {
  const out = new Map<string, { item: T; at: number }[]>();
  items.forEach((item, at) => {
    const k = keyOf(item);
    const tag = /\{[^}]+\}/.exec(k)?.[0] ?? k;
    const g = out.get(tag);
    if (g) g.push({ item, at });
    else out.set(tag, [{ item, at }]);
  });
  return out;
}
