import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Action,
  CallFailure,
  CommunityCircuits,
  composeHooks,
  createGatewayMetrics,
  createLogger,
  ErrorCode,
  parseLogLevel,
  Readiness,
  registryError,
  type AnyTransaction,
  type Call,
  type Ctx,
  type EngineHooks,
  type Target,
} from '@xcai/shared';

const HOME_B = 'urn:oid:1.3.6.1.4.1.21367.13.70.2';
const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const endpoint = {
  url: 'http://127.0.0.1:9/iti38',
  timeoutMs: 1000,
  maxConcurrent: 4,
  maxResponseBytes: 1024,
};
const community: Target = { kind: 'community', location: HOME_B, label: 'B', endpoint };
const local: Target = { kind: 'local', location: 'urn:oid:1.2.3', label: 'local registry', endpoint };

function call(target: Target, action: string = Action.ITI38): Call<unknown> {
  return {
    target,
    action,
    responseAction: '',
    body: '<q/>',
    mtom: false,
    read: async () => ({}),
    failed: () => [],
  };
}

/** One sample line of the exposition, e.g. value('xcai_requests_total', {transaction: 'ITI-18'}). */
function value(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('gateway metrics', () => {
  it('counts sub-requests, latency, bytes and RegistryErrors per community with bounded labels', async () => {
    const m = createGatewayMetrics({ role: 'initiating', processMetrics: false });
    const h = m.hooks;
    const ctx = {} as Ctx;
    const a = call(community);
    const b = call(local, Action.ITI18);
    h.before?.(a, ctx);
    h.before?.(b, ctx);
    let text = (await m.render()).body;
    expect(value(text, 'xcai_fanouts_in_flight', { gateway: 'initiating' })).toBe(1);
    expect(value(text, 'xcai_subrequests_in_flight', { community: HOME_B })).toBe(1);
    const answer = {
      errors: [
        registryError(ErrorCode.UnknownPatientId, `patient ${PATIENT} is unknown`),
        registryError('urn:vendor:SomethingOdd', `about ${PATIENT}`),
      ],
    };
    h.after?.(a, ctx, { call: a, ok: true, value: answer, ms: 120 });
    h.transferred?.(a, ctx, { sent: 1000, received: 5000 });
    const failure = new CallFailure('refused', 'cannot connect');
    h.after?.(b, ctx, {
      call: b,
      ok: false,
      failure,
      errors: [registryError(ErrorCode.RegistryError, 'down')],
      ms: 3,
    });
    text = (await m.render()).body;
    expect(value(text, 'xcai_fanouts_in_flight', {})).toBe(0);
    expect(value(text, 'xcai_subrequests_in_flight', { community: HOME_B })).toBe(0);
    expect(
      value(text, 'xcai_subrequests_total', { transaction: 'ITI-38', community: HOME_B, outcome: 'ok' }),
    ).toBe(1);
    expect(
      value(text, 'xcai_subrequests_total', {
        transaction: 'ITI-18',
        community: 'local',
        outcome: 'refused',
      }),
    ).toBe(1);
    expect(
      value(text, 'xcai_subrequest_duration_seconds_count', { transaction: 'ITI-38', community: HOME_B }),
    ).toBe(1);
    expect(value(text, 'xcai_subrequest_bytes_total', { community: HOME_B, direction: 'received' })).toBe(
      5000,
    );
    expect(value(text, 'xcai_subrequest_bytes_total', { community: HOME_B, direction: 'sent' })).toBe(1000);
    expect(
      value(text, 'xcai_registry_errors_total', {
        community: HOME_B,
        error_code: 'XDSUnknownPatientId',
        severity: 'error',
      }),
    ).toBe(1);
    expect(value(text, 'xcai_registry_errors_total', { community: HOME_B, error_code: 'other' })).toBe(1);
    expect(
      value(text, 'xcai_registry_errors_total', { community: 'local', error_code: 'XDSRegistryError' }),
    ).toBe(1);
    expect(text).not.toContain('JP1001');
    expect(text).not.toContain('SomethingOdd');
  });

  it('does not miscount a call whose before hook never ran (refused by an earlier hook)', async () => {
    const m = createGatewayMetrics({ role: 'initiating', processMetrics: false });
    const c = call(community);
    m.hooks.after?.(c, {} as Ctx, {
      call: c,
      ok: false,
      failure: new CallFailure('busy', 'x'),
      errors: [],
      ms: 0,
    });
    const text = (await m.render()).body;
    expect(value(text, 'xcai_subrequests_in_flight', { community: HOME_B })).toBeUndefined();
    expect(value(text, 'xcai_fanouts_in_flight', {})).toBe(0);
    expect(value(text, 'xcai_subrequests_total', { community: HOME_B, outcome: 'busy' })).toBe(1);
  });

  it('shows each circuit state as a 0/1 series and counts transitions', async () => {
    let t = 0;
    const circuits = new CommunityCircuits({
      failureThreshold: 1,
      coolDownMs: 10,
      now: () => t,
      communities: [{ homeCommunityId: HOME_B }, { homeCommunityId: 'urn:oid:1.2.9' }],
    });
    const m = createGatewayMetrics({ role: 'initiating', processMetrics: false });
    m.watchCircuits(circuits);
    let text = (await m.render()).body;
    expect(value(text, 'xcai_circuit_state', { community: HOME_B, state: 'closed' })).toBe(1);
    expect(value(text, 'xcai_circuit_state', { community: HOME_B, state: 'open' })).toBe(0);
    circuits.get(HOME_B).record('failure', 'pass');
    text = (await m.render()).body;
    expect(value(text, 'xcai_circuit_state', { community: HOME_B, state: 'open' })).toBe(1);
    expect(value(text, 'xcai_circuit_state', { community: HOME_B, state: 'closed' })).toBe(0);
    expect(value(text, 'xcai_circuit_state', { community: 'urn:oid:1.2.9', state: 'closed' })).toBe(1);
    expect(value(text, 'xcai_circuit_transitions_total', { community: HOME_B, to: 'open' })).toBe(1);
    t = 10;
    text = (await m.render()).body;
    expect(value(text, 'xcai_circuit_state', { community: HOME_B, state: 'half-open' })).toBe(1);
  });

  it('exposes the audit spool depth from the provider it is given', async () => {
    const m = createGatewayMetrics({ role: 'responding', processMetrics: false });
    expect((await m.render()).body).not.toContain('xcai_audit_spool_depth');
    let depth = 7;
    m.setAuditSpool(() => ({ depth, bytes: depth * 100 }));
    let text = (await m.render()).body;
    expect(value(text, 'xcai_audit_spool_depth', { gateway: 'responding' })).toBe(7);
    expect(value(text, 'xcai_audit_spool_bytes', {})).toBe(700);
    depth = 2;
    text = (await m.render()).body;
    expect(value(text, 'xcai_audit_spool_depth', {})).toBe(2);
  });

  describe('inbound requests (around hook)', () => {
    let server: Server;
    let url = '';
    let hooks: EngineHooks;
    const tx = { name: 'ITI-18' } as AnyTransaction;
    let status = 200;
    const m = createGatewayMetrics({ role: 'initiating', processMetrics: false });

    beforeAll(async () => {
      hooks = composeHooks(m.hooks);
      server = createServer((req, res) => {
        void hooks.around?.(tx, { req, res, caller: { remoteAddress: '127.0.0.1' } }, async () => {
          req.resume();
          await new Promise((r) => req.once('end', r));
          res.writeHead(status, { 'content-type': 'text/plain' });
          res.write('hello ');
          res.end(Buffer.from('world'));
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/iti18`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    function post(body: string): Promise<number> {
      return new Promise((resolve, reject) => {
        const req = request(
          url,
          { method: 'POST', headers: { 'content-length': Buffer.byteLength(body) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    }

    async function settled(): Promise<string> {
      // The count is taken when the response closes on the server side.
      for (;;) {
        const text = (await m.render()).body;
        if (value(text, 'xcai_requests_in_flight', { transaction: 'ITI-18' }) === 0) return text;
        await new Promise((r) => setTimeout(r, 5));
      }
    }

    it('counts requests by transaction, peer and outcome, with durations and bytes', async () => {
      expect(await post('x'.repeat(300))).toBe(200);
      status = 400;
      expect(await post('y')).toBe(400);
      const text = await settled();
      expect(
        value(text, 'xcai_requests_total', { transaction: 'ITI-18', peer: 'local', outcome: 'ok' }),
      ).toBe(1);
      expect(
        value(text, 'xcai_requests_total', { transaction: 'ITI-18', peer: 'local', outcome: 'sender_fault' }),
      ).toBe(1);
      expect(
        value(text, 'xcai_request_duration_seconds_count', { transaction: 'ITI-18', outcome: 'ok' }),
      ).toBe(1);
      expect(value(text, 'xcai_request_bytes_total', { transaction: 'ITI-18', direction: 'in' })).toBe(301);
      expect(value(text, 'xcai_request_bytes_total', { transaction: 'ITI-18', direction: 'out' })).toBe(
        2 * 'hello world'.length,
      );
    });
  });
});

describe('readiness', () => {
  it('is ready unless a check says unready; degraded is still ready; a failing check is degraded', async () => {
    const r = new Readiness();
    expect(await r.report({ directory: { communities: 2 } })).toEqual({
      directory: { communities: 2 },
      ready: true,
      status: 'ok',
      checks: {},
    });
    r.add('circuits', () => ({ status: 'degraded', detail: { open: ['urn:oid:1.2'] } }));
    r.add('broken', () => {
      throw new Error('boom');
    });
    let rep = await r.report();
    expect([rep.ready, rep.status]).toEqual([true, 'degraded']);
    expect(rep.checks.broken).toEqual({ status: 'degraded', detail: { error: 'boom' } });
    const remove = r.add('audit', async () => ({ status: 'unready' }));
    rep = await r.report();
    expect([rep.ready, rep.status]).toEqual([false, 'unready']);
    remove();
    expect((await r.report()).ready).toBe(true);
  });
});

describe('logs', () => {
  it('keeps patient and document id fields out of records above debug', () => {
    const lines: string[] = [];
    const log = createLogger({ service: 't' }, 'debug', (l) => lines.push(l));
    log.info('query', { patientId: PATIENT, documentUniqueId: '1.2.3.4', community: HOME_B });
    log.debug('query detail', { patientId: PATIENT });
    expect(JSON.parse(lines[0])).toMatchObject({
      level: 'info',
      patientId: '[redacted]',
      documentUniqueId: '[redacted]',
      community: HOME_B,
    });
    expect(JSON.parse(lines[1])).toMatchObject({ level: 'debug', patientId: PATIENT });
  });

  it('reads levels, with the chart’s "trace" as debug', () => {
    expect(parseLogLevel('trace')).toBe('debug');
    expect(parseLogLevel('WARN')).toBe('warn');
    expect(parseLogLevel(undefined)).toBe('info');
    expect(parseLogLevel('verbose')).toBe('info');
  });
});
