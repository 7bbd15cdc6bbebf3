/**
 * `f` over `items` with at most `n` calls in flight; results in the order of `items`, each handed to
 * `onEach` as it completes (completion order).
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  n: number,
  f: (t: T, i: number) => Promise<R>,
  onEach?: (r: R) => void,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(Math.max(1, n), items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i], i);
        onEach?.(out[i]);
      }
    }),
  );
  return out;
}
