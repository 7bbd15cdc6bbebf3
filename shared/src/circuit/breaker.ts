/**
 * Circuit breaker per remote community (see README, "Circuit breakers").
 *
 * closed     every call goes out; N consecutive failures open the circuit.
 * open       calls are refused at once (CallFailure 'circuit-open', which the transaction turns into
 *            XDSUnavailableCommunity) until the cool-down has passed.
 * half-open  one call goes out as a probe, the others are still refused: a probe that reaches the
 *            community closes the circuit, a failed probe opens it again for another cool-down.
 *
 * Only a community that does not answer counts as a failure (refused connection, timeout, HTTP error,
 * unreadable answer, Receiver fault). A Sender fault or an oversized answer shows it is alive. A call
 * we cancelled, could not start (busy, egress denied) or refused ourselves counts for nothing.
 */
import { CallFailure } from '../outbound/client';
import type { CallHooks } from '../pipeline/dispatch';
import type { Call, Outcome } from '../pipeline/transaction';

export type CircuitState = 'closed' | 'open' | 'half-open';

export const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'half-open', 'open'];

export interface CircuitOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit refuses calls before it lets one probe through. */
  coolDownMs: number;
}

export const DEFAULT_CIRCUIT_OPTIONS: CircuitOptions = { failureThreshold: 5, coolDownMs: 30_000 };

/** How a finished call counts for its community's circuit. */
export type CallVerdict = 'success' | 'failure' | 'neutral';

export interface CircuitSnapshot {
  state: CircuitState;
  consecutiveFailures: number;
  /** When the circuit last opened (ISO 8601), while it is not closed. */
  openedAt?: string;
  /** When an open circuit lets the next probe through (ISO 8601). */
  retryAt?: string;
}

/** CircuitAdmission of one call: sent normally, sent as the half-open probe, or refused. */
export type CircuitAdmission = 'pass' | 'probe' | 'refuse';

/** One circuit. Time comes from `now` so tests can move the clock. */
export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(
    private readonly opts: CircuitOptions,
    private readonly now: () => number = Date.now,
    private readonly onChange: (from: CircuitState, to: CircuitState) => void = () => undefined,
  ) {}

  /** The state as of now (an open circuit whose cool-down has passed reads as half-open). */
  get state(): CircuitState {
    if (this.current === 'open' && this.coolDownOver()) return 'half-open';
    return this.current;
  }

  admit(): CircuitAdmission {
    if (this.current === 'closed') return 'pass';
    if (this.current === 'open') {
      if (!this.coolDownOver()) return 'refuse';
      this.move('half-open');
    }
    if (this.probing) return 'refuse';
    this.probing = true;
    return 'probe';
  }

  /** Records how a call admitted with `admission` went. */
  record(verdict: CallVerdict, admission: CircuitAdmission): void {
    if (admission === 'refuse') return;
    if (admission === 'probe') {
      this.probing = false;
      if (verdict === 'success') {
        this.failures = 0;
        this.move('closed');
      } else if (verdict === 'failure') {
        this.failures++;
        this.open();
      }
      return;
    }
    if (verdict === 'success') {
      if (this.current === 'closed') this.failures = 0;
    } else if (verdict === 'failure') {
      this.failures++;
      if (this.current === 'closed' && this.failures >= this.opts.failureThreshold) this.open();
    }
  }

  snapshot(): CircuitSnapshot {
    const s: CircuitSnapshot = { state: this.state, consecutiveFailures: this.failures };
    if (this.current !== 'closed') {
      s.openedAt = new Date(this.openedAt).toISOString();
      s.retryAt = new Date(this.openedAt + this.opts.coolDownMs).toISOString();
    }
    return s;
  }

  /** Milliseconds until an open circuit lets a probe through (0 when it would now). */
  retryInMs(): number {
    return Math.max(0, this.openedAt + this.opts.coolDownMs - this.now());
  }

  private coolDownOver(): boolean {
    return this.now() - this.openedAt >= this.opts.coolDownMs;
  }

  private open(): void {
    this.openedAt = this.now();
    this.move('open');
  }

  private move(to: CircuitState): void {
    const from = this.current;
    this.current = to;
    if (from !== to) this.onChange(from, to);
  }
}

/** What a finished call says about the health of the community it went to. */
export function verdictOf(outcome: Outcome<unknown>): CallVerdict {
  if (outcome.ok) return 'success';
  const f = outcome.failure;
  switch (f.kind) {
    case 'refused':
    case 'timeout':
    case 'http-status':
    case 'bad-response':
      return 'failure';
    case 'fault':
      // dispatch reports "SOAP fault: <code>: <reason>"; only the peer's own trouble counts.
      return /^SOAP fault: \S*Receiver\b/.test(f.message) ? 'failure' : 'success';
    case 'too-large':
      return 'success';
    default:
      return 'neutral';
  }
}

export interface CommunityCircuitsOptions extends Partial<CircuitOptions> {
  /** Communities known up front (homeCommunityId → display name), so every one shows in metrics. */
  communities?: { homeCommunityId: string; name?: string }[];
  now?: () => number;
  onChange?: (community: string, from: CircuitState, to: CircuitState) => void;
}

/** The circuits of every remote community of one gateway, and the call hooks that apply them. */
export class CommunityCircuits {
  readonly options: CircuitOptions;
  private readonly circuits = new Map<string, CircuitBreaker>();
  private readonly names = new Map<string, string>();
  private readonly admissions = new WeakMap<Call<unknown>, CircuitAdmission>();
  private readonly listeners: ((community: string, from: CircuitState, to: CircuitState) => void)[] = [];

  constructor(private readonly o: CommunityCircuitsOptions = {}) {
    this.options = {
      failureThreshold: o.failureThreshold ?? DEFAULT_CIRCUIT_OPTIONS.failureThreshold,
      coolDownMs: o.coolDownMs ?? DEFAULT_CIRCUIT_OPTIONS.coolDownMs,
    };
    if (!Number.isInteger(this.options.failureThreshold) || this.options.failureThreshold < 1) {
      throw new RangeError('circuit failureThreshold must be a positive integer');
    }
    if (!(this.options.coolDownMs >= 0)) throw new RangeError('circuit coolDownMs must be zero or more');
    if (o.onChange) this.listeners.push(o.onChange);
    for (const c of o.communities ?? []) {
      if (c.name) this.names.set(c.homeCommunityId, c.name);
      this.get(c.homeCommunityId);
    }
  }

  /** Adds a listener for state changes (metrics, logs). */
  onChange(f: (community: string, from: CircuitState, to: CircuitState) => void): void {
    this.listeners.push(f);
  }

  get(community: string): CircuitBreaker {
    let c = this.circuits.get(community);
    if (!c) {
      c = new CircuitBreaker(this.options, this.o.now, (from, to) =>
        this.listeners.forEach((f) => f(community, from, to)),
      );
      this.circuits.set(community, c);
    }
    return c;
  }

  states(): Map<string, CircuitState> {
    return new Map([...this.circuits].map(([k, c]) => [k, c.state]));
  }

  snapshot(): Record<string, CircuitSnapshot & { name?: string }> {
    const out: Record<string, CircuitSnapshot & { name?: string }> = {};
    for (const [k, c] of this.circuits) out[k] = { name: this.names.get(k), ...c.snapshot() };
    return out;
  }

  /** Readiness: an open circuit is degraded service, never unreadiness (other communities still work). */
  readiness(): { status: 'ok' | 'degraded'; detail: Record<string, unknown> } {
    const all = this.snapshot();
    const notClosed = Object.entries(all).filter(([, s]) => s.state !== 'closed');
    return {
      status: notClosed.length ? 'degraded' : 'ok',
      detail: {
        open: notClosed.map(([k]) => k),
        failureThreshold: this.options.failureThreshold,
        coolDownMs: this.options.coolDownMs,
        communities: all,
      },
    };
  }

  /** Call hooks: refuse calls to an open circuit, record how the others went. Remote communities only. */
  hooks(): Required<Pick<CallHooks, 'before' | 'after'>> {
    return {
      before: (call) => {
        if (call.target.kind !== 'community') return;
        const circuit = this.get(call.target.location);
        const admission = circuit.admit();
        this.admissions.set(call, admission);
        if (admission === 'refuse') {
          const s = circuit.snapshot();
          throw new CallFailure(
            'circuit-open',
            s.state === 'half-open'
              ? 'circuit half-open: waiting for the probe request to this community'
              : `circuit open after ${s.consecutiveFailures} consecutive failures; next attempt in ${Math.ceil(circuit.retryInMs() / 1000)} s`,
          );
        }
      },
      after: (call, _ctx, outcome) => {
        const admission = this.admissions.get(call);
        if (admission === undefined || call.target.kind !== 'community') return;
        this.admissions.delete(call);
        this.get(call.target.location).record(verdictOf(outcome), admission);
      },
    };
  }
}
