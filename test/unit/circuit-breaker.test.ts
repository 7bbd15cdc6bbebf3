import {
  CallFailure,
  CircuitBreaker,
  CommunityCircuits,
  settingsFromEnv,
  SettingsError,
  verdictOf,
  type Call,
  type CallFailureKind,
  type Ctx,
  type Outcome,
  type Target,
} from '@xcai/shared';

/** A clock the test moves by hand (no timing in these tests). */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const opts = { failureThreshold: 3, coolDownMs: 30_000 };

function failed(kind: CallFailureKind, message = 'x'): Outcome<unknown> {
  return { call: undefined as never, ok: false, failure: new CallFailure(kind, message), errors: [], ms: 1 };
}
const ok: Outcome<unknown> = { call: undefined as never, ok: true, value: {}, ms: 1 };

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures and refuses until the cool-down has passed', () => {
    const c = clock();
    const changes: string[] = [];
    const b = new CircuitBreaker(opts, c.now, (from, to) => changes.push(`${from}>${to}`));
    for (let i = 0; i < 2; i++) {
      expect(b.admit()).toBe('pass');
      b.record('failure', 'pass');
    }
    expect(b.state).toBe('closed');
    expect(b.admit()).toBe('pass');
    b.record('failure', 'pass');
    expect(b.state).toBe('open');
    expect(b.admit()).toBe('refuse');
    c.advance(29_999);
    expect(b.admit()).toBe('refuse');
    expect(b.retryInMs()).toBe(1);
    c.advance(1);
    expect(b.state).toBe('half-open');
    expect(changes).toEqual(['closed>open']);
  });

  it('a success in between resets the count', () => {
    const b = new CircuitBreaker(opts, clock().now);
    b.record('failure', 'pass');
    b.record('failure', 'pass');
    b.record('success', 'pass');
    b.record('failure', 'pass');
    b.record('failure', 'pass');
    expect(b.state).toBe('closed');
    expect(b.snapshot().consecutiveFailures).toBe(2);
  });

  it('neutral outcomes neither count nor reset', () => {
    const b = new CircuitBreaker(opts, clock().now);
    b.record('failure', 'pass');
    b.record('neutral', 'pass');
    b.record('failure', 'pass');
    b.record('neutral', 'pass');
    b.record('failure', 'pass');
    expect(b.state).toBe('open');
  });

  it('half-open lets exactly one probe through; a successful probe closes the circuit', () => {
    const c = clock();
    const changes: string[] = [];
    const b = new CircuitBreaker(opts, c.now, (from, to) => changes.push(`${from}>${to}`));
    for (let i = 0; i < 3; i++) b.record('failure', 'pass');
    c.advance(30_000);
    expect(b.admit()).toBe('probe');
    expect(b.admit()).toBe('refuse');
    expect(b.admit()).toBe('refuse');
    b.record('success', 'probe');
    expect(b.state).toBe('closed');
    expect(b.snapshot()).toEqual({ state: 'closed', consecutiveFailures: 0 });
    expect(b.admit()).toBe('pass');
    expect(changes).toEqual(['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('a failed probe opens the circuit again for a full cool-down', () => {
    const c = clock();
    const b = new CircuitBreaker(opts, c.now);
    for (let i = 0; i < 3; i++) b.record('failure', 'pass');
    c.advance(30_000);
    expect(b.admit()).toBe('probe');
    c.advance(5_000);
    b.record('failure', 'probe');
    expect(b.state).toBe('open');
    const s = b.snapshot();
    expect(Date.parse(s.retryAt as string) - Date.parse(s.openedAt as string)).toBe(30_000);
    expect(Date.parse(s.openedAt as string)).toBe(c.now());
    c.advance(29_999);
    expect(b.admit()).toBe('refuse');
    c.advance(1);
    expect(b.admit()).toBe('probe');
  });

  it('a probe that was cancelled frees the probe slot without deciding', () => {
    const c = clock();
    const b = new CircuitBreaker(opts, c.now);
    for (let i = 0; i < 3; i++) b.record('failure', 'pass');
    c.advance(30_000);
    expect(b.admit()).toBe('probe');
    b.record('neutral', 'probe');
    expect(b.state).toBe('half-open');
    expect(b.admit()).toBe('probe');
  });

  it('late results of calls sent before the circuit opened do not close it', () => {
    const b = new CircuitBreaker(opts, clock().now);
    for (let i = 0; i < 3; i++) b.record('failure', 'pass');
    b.record('success', 'pass');
    expect(b.state).toBe('open');
  });
});

describe('verdictOf', () => {
  it.each([
    ['refused', 'cannot connect (ECONNREFUSED)', 'failure'],
    ['timeout', 'no answer within 10 ms', 'failure'],
    ['http-status', 'HTTP 503', 'failure'],
    ['bad-response', 'answer is not a usable SOAP 1.2 envelope', 'failure'],
    ['fault', 'SOAP fault: soap:Receiver: the registry is down', 'failure'],
    ['fault', 'SOAP fault: soap:Sender: wsse:InvalidSecurityToken', 'success'],
    ['too-large', 'response larger than the configured maximum', 'success'],
    ['aborted', 'request cancelled', 'neutral'],
    ['busy', 'gave up waiting for a free connection slot', 'neutral'],
    ['egress-denied', 'no directory entry', 'neutral'],
    ['circuit-open', 'circuit open', 'neutral'],
  ] as const)('%s (%s) counts as %s', (kind, message, verdict) => {
    expect(verdictOf(failed(kind, message))).toBe(verdict);
  });

  it('an answer is a success', () => {
    expect(verdictOf(ok)).toBe('success');
  });
});

describe('CommunityCircuits call hooks', () => {
  const HOME_B = 'urn:oid:1.3.6.1.4.1.21367.13.70.2';
  const endpoint = {
    url: 'http://127.0.0.1:9/iti38',
    timeoutMs: 1000,
    maxConcurrent: 4,
    maxResponseBytes: 1024,
  };
  const community: Target = { kind: 'community', location: HOME_B, label: 'B', endpoint };
  const local: Target = { kind: 'local', location: 'urn:oid:1.2.3', label: 'local registry', endpoint };
  const ctx = {} as Ctx;
  const call = (target: Target): Call<unknown> => ({
    target,
    action: 'urn:ihe:iti:2007:CrossGatewayQuery',
    responseAction: 'urn:ihe:iti:2007:CrossGatewayQueryResponse',
    body: '',
    mtom: false,
    read: async () => ({}),
    failed: () => [],
  });
  /** Runs one call through the hooks the way dispatch does. */
  function run(
    h: ReturnType<CommunityCircuits['hooks']>,
    c: Call<unknown>,
    result: Outcome<unknown> | 'sent',
  ): CallFailure | undefined {
    try {
      h.before(c, ctx);
    } catch (e) {
      h.after(c, ctx, { call: c, ok: false, failure: e as CallFailure, errors: [], ms: 0 });
      return e as CallFailure;
    }
    if (result !== 'sent') h.after(c, ctx, { ...result, call: c });
    return undefined;
  }

  it('refuses calls to an open community with CallFailure circuit-open, and leaves local targets alone', () => {
    const c = clock();
    const circuits = new CommunityCircuits({
      ...opts,
      now: c.now,
      communities: [{ homeCommunityId: HOME_B, name: 'B' }],
    });
    const h = circuits.hooks();
    for (let i = 0; i < 3; i++) expect(run(h, call(community), failed('refused'))).toBeUndefined();
    const refused = run(h, call(community), ok);
    expect(refused).toBeInstanceOf(CallFailure);
    expect(refused?.kind).toBe('circuit-open');
    expect(refused?.message).toMatch(/circuit open after 3 consecutive failures; next attempt in 30 s/);
    for (let i = 0; i < 5; i++) expect(run(h, call(local), failed('refused'))).toBeUndefined();
    expect([...circuits.states()]).toEqual([[HOME_B, 'open']]);
  });

  it('lets one probe through after the cool-down, refuses the rest while it runs, and closes on its success', () => {
    const c = clock();
    const circuits = new CommunityCircuits({ ...opts, now: c.now });
    const h = circuits.hooks();
    for (let i = 0; i < 3; i++) run(h, call(community), failed('timeout'));
    c.advance(30_000);
    const probe = call(community);
    expect(run(h, probe, 'sent')).toBeUndefined();
    expect(run(h, call(community), ok)?.message).toMatch(/half-open/);
    h.after(probe, ctx, { ...ok, call: probe });
    expect(circuits.get(HOME_B).state).toBe('closed');
    expect(run(h, call(community), ok)).toBeUndefined();
  });

  it('reports readiness: ok when all are closed, degraded (never unready) when one is open', () => {
    const c = clock();
    const circuits = new CommunityCircuits({
      ...opts,
      now: c.now,
      communities: [{ homeCommunityId: HOME_B, name: 'B' }, { homeCommunityId: 'urn:oid:1.2.3.9' }],
    });
    expect(circuits.readiness().status).toBe('ok');
    const h = circuits.hooks();
    for (let i = 0; i < 3; i++) run(h, call(community), failed('refused'));
    const r = circuits.readiness();
    expect(r.status).toBe('degraded');
    expect(r.detail.open).toEqual([HOME_B]);
    expect((r.detail.communities as Record<string, { state: string; name?: string }>)[HOME_B]).toMatchObject({
      state: 'open',
      name: 'B',
      consecutiveFailures: 3,
    });
    expect((r.detail.communities as Record<string, { state: string }>)['urn:oid:1.2.3.9'].state).toBe(
      'closed',
    );
  });

  it('tells listeners about state changes', () => {
    const changes: string[] = [];
    const circuits = new CommunityCircuits({
      ...opts,
      now: clock().now,
      onChange: (k, from, to) => changes.push(`${k} ${from}>${to}`),
    });
    const h = circuits.hooks();
    for (let i = 0; i < 3; i++) run(h, call(community), failed('refused'));
    expect(changes).toEqual([`${HOME_B} closed>open`]);
  });

  it('rejects nonsense settings', () => {
    expect(() => new CommunityCircuits({ failureThreshold: 0 })).toThrow(RangeError);
    expect(() => new CommunityCircuits({ coolDownMs: -1 })).toThrow(RangeError);
  });
});

describe('circuit settings from the environment', () => {
  const base = { XCAI_DIRECTORY: '/etc/xcai/directory.yaml' };
  const defaults = { port: 8080, clientAuth: 'optional' as const };

  it('defaults to 5 failures and a 30 s cool-down', () => {
    expect(settingsFromEnv(base, defaults).circuit).toEqual({ failureThreshold: 5, coolDownMs: 30_000 });
  });

  it('reads XCAI_CIRCUIT_FAILURES and XCAI_CIRCUIT_COOLDOWN_MS', () => {
    const s = settingsFromEnv(
      { ...base, XCAI_CIRCUIT_FAILURES: '3', XCAI_CIRCUIT_COOLDOWN_MS: '10000' },
      defaults,
    );
    expect(s.circuit).toEqual({ failureThreshold: 3, coolDownMs: 10_000 });
  });

  it.each([
    ['XCAI_CIRCUIT_FAILURES', '0'],
    ['XCAI_CIRCUIT_FAILURES', 'many'],
    ['XCAI_CIRCUIT_COOLDOWN_MS', '-5'],
  ])('refuses %s=%s', (k, v) => {
    expect(() => settingsFromEnv({ ...base, [k]: v }, defaults)).toThrow(SettingsError);
  });
});
