/**
 * What the consent check costs at the Responding Gateway (issue 18), run by hand:
 * `node test/bench/run.js disclosure [--smoke]` (after `npm run build`).
 *
 * One reference community (demo seed B) and three responding gateways in front of it, each in its
 * own process: no consent check; consent from BPPC documents cached (cacheMs 30 s, the default); and
 * BPPC without cache (one extra ITI-18 per transaction). Sequential ITI-38 FindDocuments and ITI-39
 * (one KOS manifest; with consent, a GetDocuments lookup first), interleaved across the gateways:
 * p50 latency of each ÷ that of the gateway without consent (goal: cached ≤ 1.2 for ITI-38; the
 * lookups of ITI-39 and of the uncached check cost one registry round trip each).
 */
import { Action, encodeFindDocumentsRequest, encodeRetrieveDocumentSetRequest } from '@xcai/shared';
import { readManifest } from '../../services/reference-community/src/server';
import { DEMO_PRIVACY_POLICIES } from '../../services/reference-community/src/seed/consent';
import { retrieveCall, soapCall } from '../support/client';
import { BENCH_LIMITS, demoSeeds, localOf, spawnCommunity } from '../support/federation';
import { spawnGateway, type GatewayProcess } from '../support/processes';

const smoke = process.argv.includes('--smoke');
const N = smoke ? 15 : 400;
const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const CALLER = { homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.101', name: 'A' };

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const seeds = await demoSeeds();
  const m = readManifest(seeds.B);
  const ref = await spawnCommunity([seeds.B]);
  const kos = m.documentEntries.find(
    (d) => d.patientId === PATIENT && d.availabilityStatus.endsWith(':Approved'),
  )!;
  const directory = (consent?: Record<string, unknown>) => ({
    homeCommunityId: ref.homeCommunityId,
    name: 'B',
    local: localOf(ref),
    communities: [CALLER],
    inboundLimits: BENCH_LIMITS,
    ...(consent ? { consent } : {}),
  });
  const bppc = { source: 'bppc', default: 'permit', deny: [DEMO_PRIVACY_POLICIES.optOut] };
  const env = { XCAI_AUDIT_TRANSPORT: 'off' };
  const gateways: [string, GatewayProcess][] = [
    ['no consent check', await spawnGateway('responding', directory(), env)],
    ['BPPC, cached', await spawnGateway('responding', directory(bppc), env)],
    ['BPPC, no cache', await spawnGateway('responding', directory({ ...bppc, cacheMs: 0 }), env)],
  ];
  try {
    const query = encodeFindDocumentsRequest(PATIENT);
    const retrieve = encodeRetrieveDocumentSetRequest([
      {
        homeCommunityId: ref.homeCommunityId,
        repositoryUniqueId: kos.repositoryUniqueId,
        documentUniqueId: kos.uniqueId,
      },
    ]);
    const times = gateways.map(() => ({ iti38: [] as number[], iti39: [] as number[] }));
    for (let i = 0; i < N + 5; i++) {
      for (const [k, [, g]] of gateways.entries()) {
        let t = process.hrtime.bigint();
        const q = await soapCall(`${g.url}/iti38`, Action.ITI38, query);
        const q1 = Number(process.hrtime.bigint() - t) / 1e6;
        t = process.hrtime.bigint();
        const r = await retrieveCall(`${g.url}/iti39`, Action.ITI39, retrieve);
        const r1 = Number(process.hrtime.bigint() - t) / 1e6;
        if (q.status !== 200 || r.documents.length !== 1)
          throw new Error(`unexpected answer from ${gateways[k][0]}`);
        if (i < 5) continue; // warm-up
        times[k].iti38.push(q1);
        times[k].iti39.push(r1);
      }
    }
    const base = times[0];
    console.log(`disclosure: ${N} sequential ITI-38 + ITI-39 per gateway${smoke ? ' (smoke)' : ''}`);
    for (const [k, [label]] of gateways.entries()) {
      const t = times[k];
      console.log(
        `  ${label.padEnd(18)} ITI-38 p50 ${p50(t.iti38).toFixed(2)} ms (÷ baseline ${(p50(t.iti38) / p50(base.iti38)).toFixed(2)})` +
          `   ITI-39 p50 ${p50(t.iti39).toFixed(2)} ms (÷ baseline ${(p50(t.iti39) / p50(base.iti39)).toFixed(2)})`,
      );
    }
  } finally {
    await Promise.all(gateways.map(([, g]) => g.stop()));
    await ref.stop();
  }
}

main().catch((e: Error) => {
  console.error(e);
  process.exitCode = 1;
});
