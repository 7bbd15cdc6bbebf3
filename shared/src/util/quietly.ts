/** Runs a clean-up promise whose failure no longer matters (the stream is being dropped anyway). */
export function quietly(p: Promise<unknown> | undefined): void {
  p?.catch(() => undefined);
}
