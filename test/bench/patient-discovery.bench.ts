/**
 * Patient discovery benchmark (issue 14), run by hand: `node test/bench/run.js patient-discovery [--smoke]`
 * (after `npm run build`).
 *
 * ITI-18 fanned out to 20 remote communities that answer ITI-38 — and, in the xcpd mode, ITI-55 —
 * after 200 ms each (benchmark fixtures, so that only the initiating gateway's own work is measured),
 * with our Patient Demographics Supplier the reference MPI in its own process. p50 latency:
 *   shared      every community in the shared identity mode (the baseline);
 *   xcpd cold   a patient not yet correlated: ITI-47, then ITI-55 to all 20 at once, then ITI-38;
 *   xcpd warm   the same patient again: correlations from the cache, ITI-38 only.
 * Ratios to shared (goals: warm ≤ 1.05, cold ≤ 2.1 — one extra parallel round trip), with the cache
 * in process and (unless --smoke) in the real Redis shared by replicas.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import {
  Action,
  decodeEnvelope,
  decodePatientQuery,
  encodeEnvelope,
  encodeFindDocumentsRequest,
  encodePatientQueryAnswer,
} from '@xcai/shared';
import { spawnCommunity } from '../support/federation';
import { spawnGateway } from '../support/processes';
import { deleteUnder, inspector, REDIS_URL, uniquePrefix } from '../support/redis';
import { generateCommunitySeed } from '../../services/reference-community/src/seed/generate';
import type { PatientSpec, SeedSpec } from '../../services/reference-community/src/seed/types';

const smoke = process.argv.includes('--smoke');
const N = smoke ? 4 : 20;
const RUNS = smoke ? 5 : 50;
const WARMUP = smoke ? 2 : 20;
const DELAY = 200;
const OUR_IDS = '1.3.6.1.4.1.21367.13.20.1900';
const OWN = 'urn:oid:1.3.6.1.4.1.21367.13.70.199';
const home = (i: number) => `urn:oid:1.3.6.1.4.1.21367.13.70.${200 + i}`;
const authority = (i: number) => `1.3.6.1.4.1.21367.13.20.${2000 + i}`;
const patient = (k: number) => `P${String(k).padStart(4, '0')}^^^&${OUR_IDS}&ISO`;

/** Our MPI: patient 0 with one study (the answer every fixture community returns), the rest registered only. */
function mpiSpec(patients: number): SeedSpec {
  const person = (k: number): PatientSpec => ({
    id: patient(k),
    name: { alphabetic: `Shiken^Kanja${k}`, ideographic: `試験^患者${k}`, phonetic: `しけん^かんじゃ${k}` },
    characterSet: 'ISO_IR 192',
    birthDate: '19700101',
    sex: 'O',
    studies:
      k === 0
        ? [
            {
              description: 'bench',
              modality: 'CT',
              date: '20240101',
              series: 1,
              instancesPerSeries: 1,
              instanceSize: 4096,
            },
          ]
        : [],
  });
  return {
    community: 'PD',
    homeCommunityId: OWN,
    uidRoot: '1.3.6.1.4.1.21367.13.70.199.1',
    repositoryUniqueId: '1.3.6.1.4.1.21367.13.70.199.2',
    idsRepositoryUniqueId: '1.3.6.1.4.1.21367.13.70.199.3',
    patients: Array.from({ length: patients }, (_, k) => person(k)),
  };
}

/** A remote community: ITI-38 and ITI-55 answered after 200 ms (ITI-55: a match for whoever is asked). */
async function fixtureCommunity(i: number, documentEntry: string) {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const env = decodeEnvelope(Buffer.concat(chunks), {}, true);
      let action: string = Action.ITI38Response;
      let body = documentEntry.replaceAll('$HOME', home(i));
      if (env.wsa.action === Action.ITI55) {
        const q = decodePatientQuery(env.doc, env.payload);
        action = Action.ITI55Response;
        body = encodePatientQueryAnswer(
          {
            messageId: { root: crypto.randomUUID() },
            acknowledgement: 'AA',
            queryResponseCode: 'OK',
            matches: [
              {
                patientId: { root: authority(i), extension: `R-${q.ids[0]?.extension}` },
                otherIds: [],
                person: q.demographics,
                custodian: home(i).slice(8),
              },
            ],
            issues: [],
          },
          {
            sender: { id: { root: home(i).slice(8) } },
            receiver: q.sender,
            targetMessageId: q.messageId,
            queryId: q.queryId,
            queryByParameterXml: q.queryByParameterXml,
          },
        );
      }
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/soap+xml; charset=UTF-8' });
        res.end(encodeEnvelope({ action, relatesTo: env.wsa.messageId, body, request: false }));
      }, DELAY);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function query(url: string, who: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml' },
    body: encodeEnvelope({ action: Action.ITI18, body: encodeFindDocumentsRequest(who), request: true }),
  });
  const text = await res.body.text();
  const ms = performance.now() - t0;
  const entries = (text.match(/<rim:ExtrinsicObject /g) ?? []).length;
  if (!text.includes('ResponseStatusType:Success') || entries < N)
    throw new Error(`fan-out answer not a Success with ${N} entries: ${text.slice(0, 400)}`);
  return ms;
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const seed = mkdtempSync(join(tmpdir(), 'bench-xcpd-'));
  await generateCommunitySeed(mpiSpec(1 + WARMUP + RUNS + 2), seed);
  const mpi = await spawnCommunity([seed]);
  // One DocumentEntry as a Responding Gateway would answer it (patient 0's, from our registry).
  const one = await request(mpi.registry, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml' },
    body: encodeEnvelope({
      action: Action.ITI18,
      body: encodeFindDocumentsRequest(patient(0)),
      request: true,
    }),
  });
  const text = await one.body.text();
  const documentEntry = text
    .slice(text.indexOf('<query:AdhocQueryResponse'), text.indexOf('</soap:Body>'))
    .replace('<rim:ExtrinsicObject ', '<rim:ExtrinsicObject home="$HOME" ');
  const fixtures = await Promise.all(Array.from({ length: N }, (_, i) => fixtureCommunity(i, documentEntry)));
  const directory = (mode: 'shared' | 'xcpd') => ({
    homeCommunityId: OWN,
    // Our registry is asked too; it answers at once (the remote communities set the pace).
    local: { registry: { url: mpi.registry }, patientDemographicsSupplier: { url: mpi.pdq } },
    patientIdentity: { assigningAuthority: OUR_IDS },
    communities: fixtures.map((f, i) => ({
      homeCommunityId: home(i),
      name: `C${i}`,
      endpoints: { iti38: `${f.url}/iti38`, iti55: `${f.url}/iti55` },
      ...(mode === 'xcpd' ? { patientIdentity: { mode: 'xcpd', assigningAuthority: authority(i) } } : {}),
    })),
  });

  // The baseline runs before and after the xcpd runs (same kind of patient: no studies of our own),
  // so that process warm-up and machine noise fall on both sides.
  const shared = await spawnGateway('initiating', directory('shared'));
  const base: number[] = [];
  const measureShared = async (warmup: number) => {
    for (let r = 0; r < warmup + RUNS; r++) {
      const ms = await query(`${shared.url}/iti18`, patient(1));
      if (r >= warmup) base.push(ms);
    }
  };
  await measureShared(WARMUP);
  const rows: string[] = [];
  const prefix = uniquePrefix('bench-xcpd');
  const variants: [string, Record<string, string>][] = [['in process', {}]];
  if (!smoke)
    variants.push([
      'in Redis',
      { REDIS_URL, XCAI_REDIS_PREFIX: prefix, XCAI_HANDOVER_SECRET: 'bench-replicas' },
    ]);
  for (const [label, env] of variants) {
    const ig = await spawnGateway('initiating', directory('xcpd'), env);
    const url = `${ig.url}/iti18`;
    // Cold: every request is a patient not correlated yet (warm-up requests use patients of their own).
    const cold: number[] = [];
    for (let r = 0; r < WARMUP + RUNS; r++) {
      const ms = await query(url, patient(1 + r));
      if (r >= WARMUP) cold.push(ms);
    }
    // Warm: the same patient again and again.
    const warm: number[] = [];
    for (let r = 0; r < WARMUP + RUNS; r++) {
      const ms = await query(url, patient(1));
      if (r >= WARMUP) warm.push(ms);
    }
    await ig.stop();
    rows.push(`${label}|${p50(cold)}|${p50(warm)}`);
  }
  await measureShared(0);
  await shared.stop();
  const baseline = p50(base);
  console.log(`ITI-18 across ${N} communities answering after ${DELAY} ms, p50 over ${RUNS} runs:`);
  console.log(
    `  shared identity mode                        ${baseline.toFixed(1)} ms (baseline, ${base.length} runs)`,
  );
  for (const row of rows) {
    const [label, c, w] = row.split('|');
    console.log(
      `  xcpd, cache ${label.padEnd(10)}  cold ${Number(c).toFixed(1)} ms = ${(Number(c) / baseline).toFixed(3)} × shared (goal ≤ 2.1)` +
        `   warm ${Number(w).toFixed(1)} ms = ${(Number(w) / baseline).toFixed(3)} × shared (goal ≤ 1.05)`,
    );
  }
  const r = inspector();
  await deleteUnder(r, prefix);
  r.disconnect();
  await Promise.all(fixtures.map((f) => f.close()));
  await mpi.stop();
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e);
    process.exit(1);
  },
);
