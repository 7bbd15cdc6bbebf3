/**
 * Many simulated remote communities in one process, for the national-scale fan-out benchmark: each
 * community is its own HTTPS server (its own loopback address, so its own origin, connection pool
 * and TLS session at the caller) requiring a client certificate, and answers ITI-38 Cross Gateway
 * Query after a delay drawn from a lognormal distribution (median 150 ms, p99 2 s). A share of the
 * requests is never answered (held until the caller gives up) and a share gets a SOAP fault.
 *
 * What a community does with a query is a function of (seed, community, patient id) only, so runs
 * are repeatable and the benchmark asks the farm, per patient id, which communities timed out or
 * faulted and how long the slowest answering one took. The farm counts TLS handshakes (full and
 * resumed), requests and requests in flight.
 *
 * The parent side is `spawnCommunityFarm`; the farm itself runs when this file is the main module
 * (`node -r test/support/ts-register.js test/support/community-farm.ts`, config in FARM_CONFIG).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

export interface FarmConfig {
  communities: number;
  seed: number;
  /** homeCommunityId of community i is `${homePrefix}.${i + 1}`. */
  homePrefix: string;
  /** Server certificates (PEM files): community i presents `certs[floor(i / certGroup)]`. */
  certs: { cert: string; key: string }[];
  certGroup: number;
  /** Trust anchor for the callers' client certificates. */
  ca: string;
  /** Answers never come later than this (a later draw is answered at this time). */
  maxAnswerMs: number;
  /** Shares of requests never answered and answered with a SOAP fault. */
  timeoutShare: number;
  faultShare: number;
  /** Idle time after which a community closes a kept-alive connection. */
  keepAliveMs: number;
}

/** The lognormal the communities' answer times follow: median 150 ms, 99th percentile 2 s. */
export const DELAY_MEDIAN_MS = 150;
export const DELAY_P99_MS = 2000;
const SIGMA = Math.log(DELAY_P99_MS / DELAY_MEDIAN_MS) / 2.3263;

/** Loopback address of community i (all of 127.0.0.0/8 is loopback on Linux). */
export function farmHost(i: number): string {
  return `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

/** What every community did with the query for one patient. */
export interface QueryRecord {
  /** Communities asked so far. */
  asked: number;
  /** Slowest answer (documents or fault) among the communities that answered. */
  slowestAnswerMs: number;
  timedOut: string[];
  faulted: string[];
  /** DocumentEntries returned in total. */
  entries: number;
}

export interface FarmCounters {
  requests: number;
  /** TLS connections accepted, and how many of them resumed a session. */
  handshakes: number;
  resumed: number;
  inFlight: number;
  maxInFlight: number;
  /** Most requests in flight at any one community. */
  maxInFlightPerCommunity: number;
  /** Connections open now. */
  openConnections: number;
  maxOpenConnections: number;
}

export interface Farm {
  endpoints: { homeCommunityId: string; url: string }[];
  query(patient: string): Promise<QueryRecord>;
  counters(): Promise<FarmCounters>;
  reset(): Promise<void>;
  proc: ChildProcess;
  stop(): Promise<void>;
}

type Behaviour = { kind: 'answer' | 'fault' | 'timeout'; delayMs: number; entries: number };

/** Uniform numbers in (0, 1) derived from the seed, the community and the patient. */
function uniforms(seed: number, i: number, patient: string): number[] {
  const h = createHash('sha256').update(`${seed}|${i}|${patient}`).digest();
  return [0, 1, 2, 3].map((k) => (h.readUInt32BE(k * 4) + 0.5) / 2 ** 32);
}

export function behaviour(c: FarmConfig, i: number, patient: string): Behaviour {
  const [u1, u2, u3, u4] = uniforms(c.seed, i, patient);
  const z = Math.sqrt(-2 * Math.log(u2)) * Math.cos(2 * Math.PI * u3);
  const delayMs = Math.min(c.maxAnswerMs, Math.max(1, Math.round(DELAY_MEDIAN_MS * Math.exp(SIGMA * z))));
  const kind = u1 < c.timeoutShare ? 'timeout' : u1 < c.timeoutShare + c.faultShare ? 'fault' : 'answer';
  // One community in ten holds documents for the patient (one or two entries).
  const entries = kind === 'answer' && u4 < 0.1 ? (u4 < 0.05 ? 2 : 1) : 0;
  return { kind, delayMs, entries };
}

const SOAP = 'http://www.w3.org/2003/05/soap-envelope';
const WSA = 'http://www.w3.org/2005/08/addressing';

function envelope(action: string, relatesTo: string | undefined, body: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="${SOAP}" xmlns:wsa="${WSA}"><env:Header>` +
    `<wsa:Action env:mustUnderstand="1">${action}</wsa:Action>` +
    (relatesTo ? `<wsa:RelatesTo>${relatesTo}</wsa:RelatesTo>` : '') +
    `</env:Header><env:Body>${body}</env:Body></env:Envelope>`
  );
}

/** The two DocumentEntries of the NIST ITI-38 sample answer, with `$HOME` for their home. */
function sampleEntries(): string[] {
  const xml = readFileSync(
    join(__dirname, '../fixtures/ihe/samples/iti-38/nist-iti38-response.soap.xml'),
    'utf8',
  );
  const out: string[] = [];
  const re = /<rim:ExtrinsicObject[\s\S]*?<\/rim:ExtrinsicObject>/g;
  for (let m = re.exec(xml); m; m = re.exec(xml))
    out.push(m[0].replace(/home="[^"]*"/, 'home="$HOME"').replace(/\s*\n\s*/g, ' '));
  if (out.length < 2) throw new Error('the NIST ITI-38 sample no longer holds two DocumentEntries');
  return out;
}

function runFarm(c: FarmConfig): void {
  const ca = readFileSync(c.ca);
  const certs = c.certs.map((k) => ({ cert: readFileSync(k.cert), key: readFileSync(k.key), ca }));
  const entries = sampleEntries();
  const queries = new Map<string, QueryRecord>();
  const zero = (): FarmCounters => ({
    requests: 0,
    handshakes: 0,
    resumed: 0,
    inFlight: 0,
    maxInFlight: 0,
    maxInFlightPerCommunity: 0,
    openConnections: 0,
    maxOpenConnections: 0,
  });
  let n = zero();
  let open = 0;
  let inFlight = 0;
  const held = new Set<ServerResponse>();
  const servers: Server[] = [];
  const home = (i: number) => `${c.homePrefix}.${i + 1}`;

  const handle = (
    i: number,
    perCommunity: { inFlight: number },
    req: IncomingMessage,
    res: ServerResponse,
  ) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      const xml = Buffer.concat(chunks).toString();
      const messageId = /<wsa:MessageID[^>]*>([^<]+)</.exec(xml)?.[1];
      // FindDocuments names the patient in $XDSDocumentEntryPatientId ('CX' quoted).
      const patient =
        /XDSDocumentEntryPatientId"[\s\S]*?<rim:Value>'([^']*)'/.exec(xml)?.[1]?.replaceAll('&amp;', '&') ??
        '';
      const b = behaviour(c, i, patient);
      n.requests++;
      inFlight++;
      perCommunity.inFlight++;
      n.maxInFlight = Math.max(n.maxInFlight, inFlight);
      n.maxInFlightPerCommunity = Math.max(n.maxInFlightPerCommunity, perCommunity.inFlight);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        inFlight--;
        perCommunity.inFlight--;
        held.delete(res);
      };
      res.once('close', finish);
      const q = queries.get(patient) ?? {
        asked: 0,
        slowestAnswerMs: 0,
        timedOut: [],
        faulted: [],
        entries: 0,
      };
      queries.set(patient, q);
      q.asked++;
      if (b.kind === 'timeout') {
        q.timedOut.push(home(i));
        held.add(res);
        return;
      }
      q.slowestAnswerMs = Math.max(q.slowestAnswerMs, b.delayMs);
      if (b.kind === 'fault') q.faulted.push(home(i));
      q.entries += b.entries;
      setTimeout(() => {
        if (res.destroyed) return finish();
        if (b.kind === 'fault') {
          res.writeHead(500, { 'content-type': 'application/soap+xml; charset=UTF-8' });
          res.end(
            envelope(
              'http://www.w3.org/2005/08/addressing/soap/fault',
              messageId,
              `<env:Fault><env:Code><env:Value>env:Receiver</env:Value></env:Code>` +
                `<env:Reason><env:Text xml:lang="en">simulated failure of community ${i + 1}</env:Text></env:Reason></env:Fault>`,
            ),
          );
        } else {
          const objects = entries.slice(0, b.entries).map((e) => e.replaceAll('$HOME', home(i)));
          res.writeHead(200, { 'content-type': 'application/soap+xml; charset=UTF-8' });
          res.end(
            envelope(
              'urn:ihe:iti:2007:CrossGatewayQueryResponse',
              messageId,
              `<query:AdhocQueryResponse xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" ` +
                `status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success">` +
                `<rim:RegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">${objects.join('')}` +
                `</rim:RegistryObjectList></query:AdhocQueryResponse>`,
            ),
          );
        }
        finish();
      }, b.delayMs);
    });
  };

  const listening = Array.from({ length: c.communities }, (_, i) => {
    const perCommunity = { inFlight: 0 };
    const server = createServer(
      {
        ...certs[Math.floor(i / c.certGroup)],
        requestCert: true,
        rejectUnauthorized: true,
        keepAliveTimeout: c.keepAliveMs,
      },
      (req, res) => handle(i, perCommunity, req, res),
    );
    server.keepAliveTimeout = c.keepAliveMs;
    server.on('secureConnection', (s: TLSSocket) => {
      n.handshakes++;
      if (s.isSessionReused()) n.resumed++;
      open++;
      n.maxOpenConnections = Math.max(n.maxOpenConnections, open);
      s.once('close', () => open--);
    });
    servers.push(server);
    return new Promise<string>((resolve) =>
      server.listen(0, farmHost(i), () =>
        resolve(`https://${farmHost(i)}:${(server.address() as AddressInfo).port}/iti38`),
      ),
    );
  });

  void Promise.all(listening).then((urls) =>
    process.send?.({ type: 'ready', endpoints: urls.map((url, i) => ({ homeCommunityId: home(i), url })) }),
  );
  process.on('message', (m: { type: string; id: number; patient?: string }) => {
    const reply = (body: unknown) => process.send?.({ type: 'reply', id: m.id, body });
    if (m.type === 'query') reply(queries.get(m.patient ?? '') ?? null);
    else if (m.type === 'counters') reply({ ...n, inFlight, openConnections: open });
    else if (m.type === 'reset') {
      n = zero();
      queries.clear();
      reply(null);
    }
  });
  // The benchmark went away (or crashed): so does the farm.
  process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => {
    for (const r of held) r.destroy();
    for (const s of servers) s.closeAllConnections();
    process.exit(0);
  });
}

/** Starts the farm as its own process; resolves once every community listens. */
export async function spawnCommunityFarm(config: FarmConfig): Promise<Farm> {
  const proc = spawn(process.execPath, ['-r', join(__dirname, 'ts-register.js'), __filename], {
    env: { ...process.env, FARM_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let next = 0;
  const pending = new Map<number, (body: unknown) => void>();
  const endpoints = await new Promise<Farm['endpoints']>((resolve, reject) => {
    proc.on('message', (m: { type: string; id?: number; body?: unknown; endpoints?: Farm['endpoints'] }) => {
      if (m.type === 'ready') resolve(m.endpoints ?? []);
      else if (m.type === 'reply') pending.get(m.id ?? -1)?.(m.body);
    });
    proc.once('exit', (code) => reject(new Error(`community farm exited (${code})`)));
  });
  const ask = <T>(type: string, extra: Record<string, unknown> = {}) =>
    new Promise<T>((resolve) => {
      const id = next++;
      pending.set(id, (b) => {
        pending.delete(id);
        resolve(b as T);
      });
      proc.send({ type, id, ...extra });
    });
  return {
    endpoints,
    proc,
    query: (patient) => ask<QueryRecord>('query', { patient }),
    counters: () => ask<FarmCounters>('counters'),
    reset: () => ask<void>('reset'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

if (require.main === module) runFarm(JSON.parse(process.env.FARM_CONFIG ?? '{}') as FarmConfig);
