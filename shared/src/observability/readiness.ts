/**
 * Readiness of a gateway process, assembled from checks that features contribute (circuit breakers,
 * Redis, the audit spool…). Served on the management port as /readyz.
 *
 *   ok        fully working
 *   degraded  working with less (a community's circuit is open, Redis is away): still ready, because
 *             taking the pod out of service would not help and would hurt the other communities
 *   unready   this process cannot serve transactions at all: /readyz answers 503
 */
export type ReadinessStatus = 'ok' | 'degraded' | 'unready';

export interface ReadinessCheck {
  status: ReadinessStatus;
  /** JSON-serialisable detail for operators (no PHI). */
  detail?: Record<string, unknown>;
}

export type ReadinessProvider = () => ReadinessCheck | Promise<ReadinessCheck>;

export interface ReadinessReport {
  ready: boolean;
  status: ReadinessStatus;
  checks: Record<string, ReadinessCheck>;
  [k: string]: unknown;
}

const RANK: Record<ReadinessStatus, number> = { ok: 0, degraded: 1, unready: 2 };

/** A check that does not answer in time or throws counts as degraded (never hangs /readyz). */
const CHECK_TIMEOUT_MS = 2000;

export class Readiness {
  private readonly providers = new Map<string, ReadinessProvider>();

  /** Adds (or replaces) the check `name`; returns a function that removes it. */
  add(name: string, provider: ReadinessProvider): () => void {
    this.providers.set(name, provider);
    return () => {
      if (this.providers.get(name) === provider) this.providers.delete(name);
    };
  }

  names(): string[] {
    return [...this.providers.keys()];
  }

  /** Runs every check; `base` fields (e.g. directory summary) are merged into the report. */
  async report(base: Record<string, unknown> = {}): Promise<ReadinessReport> {
    const entries = await Promise.all(
      [...this.providers].map(async ([name, p]) => [name, await runCheck(p)] as const),
    );
    const checks = Object.fromEntries(entries);
    const status = entries.reduce<ReadinessStatus>(
      (worst, [, c]) => (RANK[c.status] > RANK[worst] ? c.status : worst),
      'ok',
    );
    return { ...base, ready: status !== 'unready', status, checks };
  }
}

async function runCheck(p: ReadinessProvider): Promise<ReadinessCheck> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<ReadinessCheck>((resolve) => {
      timer = setTimeout(
        () => resolve({ status: 'degraded', detail: { error: 'the check did not answer in time' } }),
        CHECK_TIMEOUT_MS,
      );
      timer.unref();
    });
    const c = await Promise.race([Promise.resolve().then(p), timeout]);
    return RANK[c.status] === undefined
      ? { status: 'degraded', detail: { error: `unknown status ${String(c.status)}` } }
      : c;
  } catch (e) {
    return { status: 'degraded', detail: { error: (e as Error)?.message ?? String(e) } };
  } finally {
    if (timer) clearTimeout(timer);
  }
}
