/**
 * Query-path benchmarks (issue 2), run by hand: `node test/bench/run.js query-fanout [--smoke]`
 * (after `npm run build`).
 *
 * (a) ITI-18 fanned out to 20 remote communities (every gateway in its own process) that each
 *     answer after 200 ms with one DocumentEntry: p50 latency ÷ 200 ms (goal ≤ 1.15; a gateway that
 *     asks one community after another would be ≈ 20).
 * (b) ITI-38 through a responding gateway vs the registry directly, 100-entry LeafClass answers:
 *     throughput ratio (goal ≥ 0.5). Registry and gateway each run in their own process; the load
 *     comes from this process (wrk when installed, else undici).
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { Action, encodeEnvelope, encodeFindDocumentsRequest } from '@xcai/shared';
import { BENCH_LIMITS, spawnCommunity } from '../support/federation';
import { spawnGateway } from '../support/processes';
import { generateCommunitySeed } from '../../services/reference-community/src/seed/generate';
import type { SeedSpec } from '../../services/reference-community/src/seed/types';

const smoke = process.argv.includes('--smoke');
/** The benchmark's client is the community calling the responding gateways (no TLS here). */
const CALLER = { homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.199', name: 'IG' };
const PATIENT = 'BENCH1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';

function spec(studies: number): SeedSpec {
  return {
    community: 'Q',
    homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.180',
    uidRoot: '1.3.6.1.4.1.21367.13.70.180.1',
    repositoryUniqueId: '1.3.6.1.4.1.21367.13.70.180.2',
    idsRepositoryUniqueId: '1.3.6.1.4.1.21367.13.70.180.3',
    patients: [
      {
        id: PATIENT,
        name: { alphabetic: 'Bench^Patient', ideographic: '試験^患者' },
        characterSet: 'ISO_IR 192',
        birthDate: '19700101',
        sex: 'O',
        studies: Array.from({ length: studies }, (_, i) => ({
          description: `study ${i}`,
          modality: 'CT',
          date: '20240101',
          series: 1,
          instancesPerSeries: 1,
          instanceSize: 4096,
        })),
      },
    ],
  };
}

const findDocuments = encodeFindDocumentsRequest(PATIENT);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/**
 * A remote community as seen by the initiating gateway: answers ITI-38 after 200 ms with one
 * DocumentEntry (a benchmark fixture, so that only the initiating gateway's own work is measured).
 */
async function fixtureCommunity(
  home: string,
  answer: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = /<wsa:MessageID>([^<]+)</.exec(Buffer.concat(chunks).toString())?.[1];
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/soap+xml; charset=UTF-8' });
        res.end(
          encodeEnvelope({
            action: Action.ITI38Response,
            relatesTo: id,
            body: answer.replaceAll('$HOME', home),
            request: false,
          }),
        );
      }, 200);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/iti38`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function measure(url: string, runs: number, warm: number): Promise<number[]> {
  const body = encodeEnvelope({ action: Action.ITI18, body: findDocuments, request: true });
  const lat: number[] = [];
  for (let i = 0; i < warm + runs; i++) {
    const t0 = performance.now();
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml' },
      body,
    });
    const text = await res.body.text();
    if (i >= warm) lat.push(performance.now() - t0);
    if (!text.includes('ResponseStatusType:Success'))
      throw new Error(`fan-out answer not Success: ${text.slice(0, 300)}`);
  }
  return lat;
}

async function fanout(seedDir: string): Promise<void> {
  const n = smoke ? 4 : 20;
  const runs = smoke ? 5 : 50;
  const warm = smoke ? 2 : 30;
  const home = (i: number) => `urn:oid:1.3.6.1.4.1.21367.13.70.${200 + i}`;
  const igDirectory = (urls: string[]) => ({
    homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.199',
    communities: urls.map((u, i) => ({ homeCommunityId: home(i), name: `C${i}`, endpoints: { iti38: u } })),
  });

  // One DocumentEntry, as a responding gateway would answer it.
  const registry = await spawnCommunity([seedDir]);
  const one = await request(registry.registry, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml' },
    body: encodeEnvelope({ action: Action.ITI18, body: findDocuments, request: true }),
  });
  const text = await one.body.text();
  const answer = text
    .slice(text.indexOf('<query:AdhocQueryResponse'), text.indexOf('</soap:Body>'))
    .replace('<rim:ExtrinsicObject ', '<rim:ExtrinsicObject home="$HOME" ');

  const fixtures = await Promise.all(Array.from({ length: n }, (_, i) => fixtureCommunity(home(i), answer)));
  const ig = await spawnGateway('initiating', igDirectory(fixtures.map((f) => f.url)));
  const lat = await measure(`${ig.url}/iti18`, runs, warm);
  const p50 = pct(lat, 50);
  console.log(
    `(a) ITI-18 fanned out to ${n} communities answering after 200 ms: p50 ${p50.toFixed(1)} ms, p95 ${pct(lat, 95).toFixed(1)} ms`,
  );
  console.log(
    `    p50 / 200 ms = ${(p50 / 200).toFixed(3)}  (goal ≤ 1.15; one community after another ≈ ${n})`,
  );
  await ig.stop();
  await Promise.all(fixtures.map((f) => f.close()));
  await registry.stop();

  // The same through real responding gateways and a registry, every gateway its own process.
  // On a 2-core machine this also measures ${n} + 2 processes sharing two cores.
  const delayed = await spawnCommunity([seedDir], { delayMs: 200 });
  const rgs = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      spawnGateway('responding', {
        homeCommunityId: home(i),
        local: { registry: { url: delayed.registry } },
        communities: [CALLER],
        inboundLimits: BENCH_LIMITS,
      }),
    ),
  );
  const ig2 = await spawnGateway('initiating', igDirectory(rgs.map((r) => `${r.url}/iti38`)));
  const lat2 = await measure(`${ig2.url}/iti18`, runs, warm);
  console.log(
    `    for information, through ${n} real responding gateways and a delayed registry (${n + 2} processes on this machine): ` +
      `p50 ${pct(lat2, 50).toFixed(1)} ms = ${(pct(lat2, 50) / 200).toFixed(3)} × 200 ms`,
  );
  await ig2.stop();
  await Promise.all(rgs.map((r) => r.stop()));
  await delayed.stop();
}

/** Requests per second with `conns` connections for `seconds`. */
async function load(url: string, action: string, seconds: number, conns: number): Promise<number> {
  const body = encodeEnvelope({ action, body: findDocuments, request: true });
  const wrk = (() => {
    try {
      execFileSync('wrk', ['--version'], { stdio: 'ignore' });
      return true;
    } catch (e) {
      return (e as { status?: number }).status === 1; // wrk --version exits 1 after printing
    }
  })();
  if (wrk) {
    const dir = mkdtempSync(join(tmpdir(), 'wrk-'));
    writeFileSync(join(dir, 'body.xml'), body);
    writeFileSync(
      join(dir, 'post.lua'),
      `local f = io.open("${join(dir, 'body.xml')}", "r"); wrk.method = "POST"; wrk.body = f:read("*a"); f:close()\n` +
        `wrk.headers["Content-Type"] = "application/soap+xml; charset=UTF-8"\n` +
        `done = function(summary, latency, requests) io.write(string.format("RPS %f ERR %d\\n", summary.requests / (summary.duration / 1e6), summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout)) end\n`,
    );
    const out = execFileSync(
      'wrk',
      ['-t2', '--timeout', '10s', `-c${conns}`, `-d${seconds}s`, '-s', join(dir, 'post.lua'), url],
      { encoding: 'utf8' },
    );
    const m = /RPS ([\d.]+) ERR (\d+)/.exec(out);
    if (!m || Number(m[2]) > 0) throw new Error(`wrk: ${out}`);
    return Number(m[1]);
  }
  const agent = new Agent({ connections: conns });
  let done = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (Date.now() < end) {
        const res = await request(url, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/soap+xml' },
          body,
        });
        await res.body.text();
        done++;
      }
    }),
  );
  await agent.close();
  return done / seconds;
}

async function throughput(seedDir: string): Promise<void> {
  const seconds = smoke ? 1 : 10;
  const registry = await spawnCommunity([seedDir]);
  const rg = await spawnGateway('responding', {
    homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.180',
    local: { registry: { url: registry.registry, maxConcurrent: 64 } },
    communities: [CALLER],
    inboundLimits: BENCH_LIMITS,
  });
  // Check the answer size once.
  const res = await request(`${rg.url}/iti38`, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml' },
    body: encodeEnvelope({ action: Action.ITI38, body: findDocuments, request: true }),
  });
  const text = await res.body.text();
  const entries = (text.match(/<rim:ExtrinsicObject /g) ?? []).length;
  await load(registry.registry, Action.ITI18, 1, 8); // warm-up
  await load(`${rg.url}/iti38`, Action.ITI38, 1, 8);
  const direct = await load(registry.registry, Action.ITI18, seconds, 16);
  const through = await load(`${rg.url}/iti38`, Action.ITI38, seconds, 16);
  console.log(
    `(b) ${entries}-entry LeafClass answers (${(text.length / 1024).toFixed(0)} KiB): registry directly ${direct.toFixed(0)} req/s, through the responding gateway ${through.toFixed(0)} req/s`,
  );
  console.log(`    throughput ratio ${(through / direct).toFixed(3)}  (goal ≥ 0.5)`);
  await rg.stop();
  await registry.stop();
}

async function main(): Promise<void> {
  // (a) measures waiting, not parsing: each community answers with one DocumentEntry.
  const small = mkdtempSync(join(tmpdir(), 'bench-query-1-'));
  await generateCommunitySeed(spec(1), small);
  const large = mkdtempSync(join(tmpdir(), 'bench-query-100-'));
  await generateCommunitySeed(spec(100), large);
  await fanout(small);
  await throughput(large);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e);
    process.exit(1);
  },
);
