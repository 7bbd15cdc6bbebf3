/**
 * Tracing, metrics, circuit breakers and readiness over real HTTP: a consumer → initiating gateway
 * → responding gateways B and C → reference communities in their own processes, plus a community D
 * that is down.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { request } from 'undici';
import {
  Action,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  newMessageId,
  type AdhocQueryResponse,
  type RunningGateway,
  type ServiceSettings,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import {
  demoSeeds,
  directory,
  ROOT,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { readManifest } from '../../services/reference-community/src/server';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HOME_D = 'urn:oid:1.3.6.1.4.1.21367.13.70.197';
const HOME_E = 'urn:oid:1.3.6.1.4.1.21367.13.70.196';

const withMgmt: ServiceSettings = {
  directoryFile: '(inline)',
  host: '127.0.0.1',
  port: 0,
  mgmtPort: 0,
  audit: { transport: 'none' },
  maxRequestBytes: 4 * 1024 * 1024,
};

let HOME: Record<'A' | 'B' | 'C', string>;
let refB: CommunityProcess, refC: CommunityProcess;
let rgB: RunningGateway, rgC: RunningGateway;
const spans = {
  ig: new InMemorySpanExporter(),
  rgB: new InMemorySpanExporter(),
  rgC: new InMemorySpanExporter(),
};
const stop: (() => Promise<void>)[] = [];

/** A "community" that accepts TCP connections and drops them at once, counting them. */
class DeadCommunity {
  connections = 0;
  private server: TcpServer = createTcpServer((s) => {
    this.connections++;
    s.destroy();
  });
  url = '';
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/iti38`;
    return this;
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const community = (name: string, home: string, iti38: string) => ({
  homeCommunityId: home,
  name,
  endpoints: { iti38: { url: iti38, timeoutMs: 5000 } },
});

function igDirectory(communities: Record<string, unknown>[]) {
  return directory({ homeCommunityId: HOME.A, name: 'A', deadlineMs: 10_000, communities });
}

function findDocuments(patient: string): string {
  return encodeFindDocumentsRequest(patient);
}

/** An ITI-18 the way a consumer sends it, with extra HTTP headers (traceparent). */
async function iti18(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<AdhocQueryResponse> {
  const xml = encodeEnvelope({
    action: Action.ITI18,
    messageId: newMessageId(),
    to: url,
    body,
    request: true,
  });
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml; charset=UTF-8', ...headers },
    body: xml,
  });
  const text = await res.body.text();
  expect(res.statusCode).toBe(200);
  const env = decodeEnvelope(
    text,
    { maxBytes: 1 << 26, maxTextLength: 1 << 26, maxElements: 1_000_000 },
    false,
  );
  return decodeAdhocQueryResponse(env.doc, env.payload);
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text() };
}

/** Waits until `find` returns something (spans are exported when they end, just after the reply). */
async function eventually<T>(find: () => T | undefined): Promise<T> {
  for (;;) {
    const v = find();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const got = Object.fromEntries(
      [...line.slice(name.length + 1, line.lastIndexOf('}')).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [
        m[1],
        m[2],
      ]),
    );
    if (Object.entries(labels).every(([k, v]) => got[k] === v))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

const traceparent = () => {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  return { traceId, parentId, header: `00-${traceId}-${parentId}-01` };
};

beforeAll(async () => {
  const seeds = await demoSeeds();
  HOME = {
    A: readManifest(seeds.A).homeCommunityId,
    B: readManifest(seeds.B).homeCommunityId,
    C: readManifest(seeds.C).homeCommunityId,
  };
  [refB, refC] = await Promise.all([spawnCommunity([seeds.B]), spawnCommunity([seeds.C])]);
  stop.push(refB.stop, refC.stop);
  const rgDir = (k: 'B' | 'C', registry: string) =>
    directory({
      homeCommunityId: HOME[k],
      name: k,
      local: { registry: { url: registry } },
      communities: [{ homeCommunityId: HOME.A, name: 'A' }],
    });
  [rgB, rgC] = await Promise.all([
    startRG(rgDir('B', refB.registry), { spanExporter: spans.rgB }),
    startRG(rgDir('C', refC.registry), { spanExporter: spans.rgC }),
  ]);
  stop.push(rgB.close, rgC.close);
}, 60_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s();
});

describe('one trace across the fan-out', () => {
  let ig: RunningGateway;
  let dead: DeadCommunity;
  beforeAll(async () => {
    dead = await new DeadCommunity().start();
    ig = await startIG(
      igDirectory([
        community('B', HOME.B, `${rgB.url}/iti38`),
        community('C', HOME.C, `${rgC.url}/iti38`),
        community('D', HOME_D, dead.url),
      ]),
      { settings: withMgmt, spanExporter: spans.ig },
    );
  });
  afterAll(async () => {
    await ig.close();
    await dead.close();
  });

  it('continues the consumer’s trace, with a client span per community that the responding gateways join', async () => {
    const tp = traceparent();
    const res = await iti18(`${ig.url}/iti18`, findDocuments(PATIENT_1), { traceparent: tp.header });
    expect(res.status).toBe('PartialSuccess');

    const inTrace = (e: InMemorySpanExporter) => () =>
      e.getFinishedSpans().filter((s) => s.spanContext().traceId === tp.traceId);
    const igSpans = inTrace(spans.ig);
    const root = await eventually(() => igSpans().find((s) => s.kind === SpanKind.SERVER));
    expect(root.name).toBe('ITI-18');
    expect(root.parentSpanContext?.spanId).toBe(tp.parentId);
    expect(root.attributes['xcai.transaction']).toBe('ITI-18');

    const clients = new Map(
      igSpans()
        .filter((s) => s.kind === SpanKind.CLIENT)
        .map((s) => [s.attributes['xcai.community'], s] as const),
    );
    expect([...clients.keys()].sort()).toEqual([HOME.B, HOME.C, HOME_D].sort());
    for (const s of clients.values()) expect(s.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(clients.get(HOME_D)?.attributes['xcai.outcome']).toBe('refused');
    expect(clients.get(HOME_D)?.attributes['xcai.error_codes']).toEqual(['XDSUnavailableCommunity']);
    expect(clients.get(HOME.B)?.attributes['xcai.outcome']).toBe('ok');

    for (const [k, exporter] of [
      ['B', spans.rgB],
      ['C', spans.rgC],
    ] as const) {
      const rgSpans = inTrace(exporter);
      const server = await eventually(() => rgSpans().find((s) => s.kind === SpanKind.SERVER));
      expect(server.name).toBe('ITI-38');
      // The responding gateway received the initiating gateway's traceparent for its call to that community.
      expect(server.parentSpanContext?.spanId).toBe(clients.get(HOME[k])?.spanContext().spanId);
      expect(server.parentSpanContext?.isRemote).toBe(true);
      const registryCall = rgSpans().find((s: ReadableSpan) => s.kind === SpanKind.CLIENT);
      expect(registryCall?.attributes['xcai.community']).toBe('local');
      expect(registryCall?.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    }
  });

  it('starts a new trace when the consumer sends none', async () => {
    spans.ig.reset();
    await iti18(`${ig.url}/iti18`, findDocuments(PATIENT_1));
    const root = await eventually(() => spans.ig.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER));
    expect(root.parentSpanContext).toBeUndefined();
    const server = await eventually(() =>
      spans.rgB
        .getFinishedSpans()
        .find((s) => s.kind === SpanKind.SERVER && s.spanContext().traceId === root.spanContext().traceId),
    );
    expect(server).toBeDefined();
  });

  it('shows per-community counters, latency and circuit state on /metrics', async () => {
    const m = await get(`${ig.mgmt?.url}/metrics`);
    expect(m.status).toBe(200);
    const at = (name: string, labels: Record<string, string>) =>
      metric(m.text, name, { gateway: 'initiating', ...labels });
    expect(
      at('xcai_subrequests_total', { transaction: 'ITI-38', community: HOME.B, outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      at('xcai_subrequests_total', { transaction: 'ITI-38', community: HOME_D, outcome: 'refused' }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      at('xcai_registry_errors_total', {
        transaction: 'ITI-38',
        community: HOME_D,
        error_code: 'XDSUnavailableCommunity',
      }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      at('xcai_subrequest_duration_seconds_count', { transaction: 'ITI-38', community: HOME.C }),
    ).toBeGreaterThanOrEqual(2);
    expect(at('xcai_subrequest_bytes_total', { community: HOME.B, direction: 'received' })).toBeGreaterThan(
      0,
    );
    expect(
      at('xcai_requests_total', { transaction: 'ITI-18', peer: 'local', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(2);
    expect(at('xcai_circuit_state', { community: HOME.B, state: 'closed' })).toBe(1);
    expect(at('xcai_circuit_state', { community: HOME_D, state: 'closed' })).toBe(1);
    expect(m.text).toContain('process_cpu_user_seconds_total');
    expect(m.text).not.toContain('JP1001');
  });
});

describe('circuit breaker per community', () => {
  let ig: RunningGateway;
  let dead: DeadCommunity;
  beforeAll(async () => {
    dead = await new DeadCommunity().start();
    ig = await startIG(
      igDirectory([community('B', HOME.B, `${rgB.url}/iti38`), community('D', HOME_D, dead.url)]),
      {
        settings: withMgmt,
        circuit: { failureThreshold: 2, coolDownMs: 3_600_000 },
      },
    );
  });
  afterAll(async () => {
    await ig.close();
    await dead.close();
  });

  it('opens after consecutive failures and then answers XDSUnavailableCommunity without a network call', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await iti18(`${ig.url}/iti18`, findDocuments(PATIENT_1));
      expect(res.errors.map((e) => [e.errorCode, e.location])).toEqual([['XDSUnavailableCommunity', HOME_D]]);
    }
    const before = dead.connections;
    expect(before).toBeGreaterThanOrEqual(2);
    const res = await iti18(`${ig.url}/iti18`, findDocuments(PATIENT_1));
    expect(res.status).toBe('PartialSuccess');
    expect(res.errors.map((e) => [e.errorCode, e.location])).toEqual([['XDSUnavailableCommunity', HOME_D]]);
    expect(res.errors[0].codeContext).toMatch(/circuit open after 2 consecutive failures/);
    expect(new Set(res.objects.map((o) => o.attr('home')))).toEqual(new Set([HOME.B]));
    expect(dead.connections).toBe(before);

    const m = (await get(`${ig.mgmt?.url}/metrics`)).text;
    expect(metric(m, 'xcai_circuit_state', { community: HOME_D, state: 'open' })).toBe(1);
    expect(metric(m, 'xcai_circuit_state', { community: HOME.B, state: 'closed' })).toBe(1);
    expect(metric(m, 'xcai_circuit_transitions_total', { community: HOME_D, to: 'open' })).toBe(1);
    expect(metric(m, 'xcai_subrequests_total', { community: HOME_D, outcome: 'circuit-open' })).toBe(1);
  });

  it('stays ready with one circuit open, and shows the circuit in the readiness detail', async () => {
    const r = await get(`${ig.mgmt?.url}/readyz`);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.text) as {
      ready: boolean;
      status: string;
      checks: {
        circuits: {
          status: string;
          detail: {
            open: string[];
            communities: Record<string, { state: string; name?: string; retryAt?: string }>;
          };
        };
      };
    };
    expect([body.ready, body.status]).toEqual([true, 'degraded']);
    expect(body.checks.circuits.status).toBe('degraded');
    expect(body.checks.circuits.detail.open).toEqual([HOME_D]);
    expect(body.checks.circuits.detail.communities[HOME_D]).toMatchObject({ state: 'open', name: 'D' });
    expect(body.checks.circuits.detail.communities[HOME_D].retryAt).toMatch(/^\d{4}-/);
    expect(body.checks.circuits.detail.communities[HOME.B].state).toBe('closed');
    expect((await get(`${ig.mgmt?.url}/healthz`)).status).toBe(200);
  });

  it('lets features add readiness checks; only "unready" makes /readyz answer 503', async () => {
    const remove = ig.readiness.add('redis', () => ({ status: 'degraded', detail: { connected: false } }));
    let r = await get(`${ig.mgmt?.url}/readyz`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).checks.redis).toEqual({ status: 'degraded', detail: { connected: false } });
    const removeFatal = ig.readiness.add('fatal', () => ({ status: 'unready' }));
    r = await get(`${ig.mgmt?.url}/readyz`);
    expect(r.status).toBe(503);
    removeFatal();
    remove();
    expect((await get(`${ig.mgmt?.url}/readyz`)).status).toBe(200);
  });
});

describe('traceparent on the wire', () => {
  let capture: Server;
  let captureUrl = '';
  const received: (string | undefined)[] = [];
  beforeAll(async () => {
    capture = createServer((req, res) => {
      received.push(req.headers.traceparent as string | undefined);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = /<wsa:MessageID>([^<]+)</.exec(Buffer.concat(chunks).toString())?.[1];
        res.writeHead(200, { 'content-type': 'application/soap+xml' });
        res.end(
          encodeEnvelope({
            action: Action.ITI38Response,
            relatesTo: id,
            body: encodeAdhocQueryResponse('Success', [], []),
            request: false,
          }),
        );
      });
    });
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
    captureUrl = `http://127.0.0.1:${(capture.address() as AddressInfo).port}/iti38`;
  });
  afterAll(() => new Promise<void>((r) => capture.close(() => r())));

  it('with tracing on: same trace id, the client span as parent', async () => {
    const exporter = new InMemorySpanExporter();
    const ig = await startIG(igDirectory([community('E', HOME_E, captureUrl)]), { spanExporter: exporter });
    try {
      const tp = traceparent();
      received.length = 0;
      await iti18(`${ig.url}/iti18`, findDocuments(PATIENT_1), { traceparent: tp.header });
      expect(received).toHaveLength(1);
      const [, traceId, spanId, flags] = (received[0] ?? '').split('-');
      expect([traceId, flags]).toEqual([tp.traceId, '01']);
      const client = await eventually(() =>
        exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT),
      );
      expect(spanId).toBe(client.spanContext().spanId);
    } finally {
      await ig.close();
    }
  });

  it('with tracing off: the consumer’s traceparent is passed on unchanged, and none is invented', async () => {
    const ig = await startIG(igDirectory([community('E', HOME_E, captureUrl)]));
    try {
      expect(ig.observability.tracing.recording).toBe(false);
      const tp = traceparent();
      received.length = 0;
      await iti18(`${ig.url}/iti18`, findDocuments(PATIENT_1), { traceparent: tp.header });
      await iti18(`${ig.url}/iti18`, findDocuments(PATIENT_1));
      expect(received).toEqual([tp.header, undefined]);
    } finally {
      await ig.close();
    }
  });
});

describe('the initiating gateway process (env contract)', () => {
  it('exports spans with OTLP/HTTP to XCAI_OTLP_ENDPOINT and serves /metrics on XCAI_MGMT_PORT', async () => {
    const posts: { path: string; body: Buffer }[] = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ path: req.url ?? '', body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const tmp = mkdtempSync(join(tmpdir(), 'xcai-otlp-'));
    const dirFile = join(tmp, 'directory.yaml');
    writeFileSync(
      dirFile,
      JSON.stringify({
        homeCommunityId: HOME.A,
        name: 'A',
        communities: [community('B', HOME.B, `${rgB.url}/iti38`)],
      }),
    );
    const proc = spawn(process.execPath, [join(ROOT, 'services/initiating-gateway/dist/main.js')], {
      env: {
        PATH: process.env.PATH,
        XCAI_DIRECTORY: dirFile,
        XCAI_PORT: '0',
        XCAI_MGMT_PORT: '0',
        XCAI_LOG_LEVEL: 'info',
        XCAI_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      const started = await new Promise<{ url: string; mgmt: string }>((resolve, reject) => {
        const rl = createInterface({ input: proc.stdout! });
        rl.on('line', (l) => {
          const rec = JSON.parse(l) as { msg: string; url: string; mgmt: string };
          if (rec.msg === 'gateway started') resolve(rec);
        });
        proc.once('exit', (code) => reject(new Error(`initiating gateway exited (${code})`)));
      });
      const tp = traceparent();
      const res = await iti18(`${started.url}/iti18`, findDocuments(PATIENT_1), { traceparent: tp.header });
      expect(res.status).toBe('Success');
      const m = await get(`${started.mgmt}/metrics`);
      expect(
        metric(m.text, 'xcai_subrequests_total', { gateway: 'initiating', community: HOME.B, outcome: 'ok' }),
      ).toBe(1);
      proc.kill('SIGTERM'); // closing exports what is batched
      expect(await exited).toBe(0);
      expect(posts.length).toBeGreaterThan(0);
      expect(posts.every((p) => p.path === '/v1/traces')).toBe(true);
      type OtlpSpan = {
        traceId: string;
        name: string;
        attributes: { key: string; value: { stringValue?: string } }[];
      };
      const exported = posts.flatMap((p) =>
        (
          JSON.parse(p.body.toString()) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }
        ).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      );
      expect(
        exported
          .filter((s) => s.traceId === tp.traceId)
          .map((s) => s.name)
          .sort(),
      ).toEqual(['ITI-18', `ITI-38 ${HOME.B}`]);
      const all = Buffer.concat(posts.map((p) => p.body)).toString();
      expect(all).toContain('"xcai-initiating-gateway"');
      expect(all).not.toContain('JP1001');
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await new Promise<void>((r) => collector.close(() => r()));
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
