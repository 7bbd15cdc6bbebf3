import type { CallHooks } from './dispatch';
import type { EngineHooks } from './engine';

/**
 * Combines hook sets from several features (security, async, metrics, circuit breaker…).
 * before/after/finished/transferred run in order; `around` wrappers nest (the first outermost);
 * the first `exchange` that takes a call wins; `admit` and `served` may be given by one feature only.
 */
export function composeHooks(...sets: (EngineHooks | undefined)[]): EngineHooks {
  const hs = sets.filter((h): h is EngineHooks => h !== undefined);
  const one = <K extends 'admit' | 'served'>(k: K): EngineHooks[K] => {
    const given = hs.filter((h) => h[k]);
    if (given.length > 1) throw new Error(`more than one feature provides the ${k} hook`);
    return given[0]?.[k];
  };
  const exchangers = hs.filter((h) => h.exchange);
  const headerers = hs.filter((h) => h.headers);
  const wrappers = hs.filter((h) => h.around);
  const counters = hs.filter((h) => h.transferred);
  return {
    admit: one('admit'),
    served: one('served'),
    before: (call, ctx) => hs.forEach((h) => h.before?.(call, ctx)),
    after: (call, ctx, o) => hs.forEach((h) => h.after?.(call, ctx, o)),
    finished: (tx, f) => hs.forEach((h) => h.finished?.(tx, f)),
    exchange: exchangers.length
      ? (call, ctx, req) => {
          for (const h of exchangers) {
            const r = h.exchange?.(call, ctx, req);
            if (r) return r;
          }
          return undefined;
        }
      : undefined,
    headers: headerers.length
      ? (call, ctx) => Object.assign({}, ...headerers.map((h) => h.headers?.(call, ctx)))
      : undefined,
    // The first set's wrapper is the outermost.
    around: wrappers.length
      ? (tx, inbound, run) =>
          wrappers.reduceRight<() => Promise<void>>(
            (inner, h) => () => h.around?.(tx, inbound, inner) ?? inner(),
            run,
          )()
      : undefined,
    transferred: counters.length
      ? (call, ctx, bytes) => counters.forEach((h) => h.transferred?.(call, ctx, bytes))
      : undefined,
  } satisfies CallHooks & EngineHooks;
}
