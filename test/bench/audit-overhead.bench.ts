/**
 * What ATNA auditing costs a request, run by hand after `npm run build`:
 *   node test/bench/run.js audit-overhead [--smoke]
 *
 * Two initiating gateway processes with the same directory in front of the same reference
 * community: one with XCAI_AUDIT_TRANSPORT=off, one auditing over RFC 5425 (mutual TLS) to the
 * product's Audit Record Repository in its own process (spool with fdatasync, hash chain, patient
 * links — the production path). The same transactions go to both, alternately, one at a time
 * (latency) and then 8 at a time (under load). Reported: p50/p95 per transaction and the p50 ratio
 * audit-on / audit-off (goal ≤ 1.05). `--smoke` (CI): a few requests, checks that it all runs.
 * `--only <tx>`, `--runs N`, `--conc 1,8` narrow a run down (investigating one figure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import {
  Action,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { loadAuditRecords } from '@xcai/shared/src/audit/report';
import { makeCerts, waitFor } from '../support/audit';
import { retrieveCall, soapCall } from '../support/client';
import { demoSeeds, ROOT, spawnCommunity } from '../support/federation';
import { spawnGateway, type GatewayProcess } from '../support/processes';
import { readManifest } from '../../services/reference-community/src/server';

const smoke = process.argv.includes('--smoke');
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
/** `--only RAD-69`: just the transactions whose name contains this; `--runs N`, `--conc 1,8`. */
const only = arg('--only');
const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const GOAL = 1.05;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

async function startArr(dir: string, certDir: string): Promise<{ port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'shared/dist/audit/repository-main.js')], {
    env: {
      ...process.env,
      XCAI_ARR_DIR: dir,
      XCAI_ARR_PORT: '0',
      XCAI_ARR_TLS_CERT: path.join(certDir, 'arr.crt'),
      XCAI_ARR_TLS_KEY: path.join(certDir, 'arr.key'),
      XCAI_ARR_TLS_CA: path.join(certDir, 'ca.crt'),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (l) => {
      const rec = JSON.parse(l) as { msg?: string; port?: number };
      if (rec.msg === 'audit repository started' && rec.port) resolve(rec.port);
    });
    proc.once('exit', (code) => reject(new Error(`audit repository exited (${code})`)));
  });
  return { port, proc };
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-audit-overhead-'));
  const certDir = path.join(tmp, 'certs');
  makeCerts(certDir, ['arr', 'gw']);
  const seeds = await demoSeeds();
  const m = readManifest(seeds.A);
  const ref = await spawnCommunity([seeds.A]);
  const arrDir = path.join(tmp, 'arr');
  const arr = await startArr(arrDir, certDir);
  const directory = {
    homeCommunityId: m.homeCommunityId,
    name: 'A',
    local: {
      registry: { url: ref.registry },
      repositories: [{ repositoryUniqueId: ref.repositoryUniqueId, url: ref.repository }],
      imagingDocumentSources: [{ repositoryUniqueId: ref.idsRepositoryUniqueId, url: ref.ids }],
    },
    communities: [],
    // The load comes from one peer: lift the per-peer rate limit (R43) out of the way.
    inboundLimits: { requestsPerSecond: 100_000, burst: 100_000, maxConcurrentRequests: 1000 },
  };
  const spool = path.join(tmp, 'spool');
  const [off, on] = await Promise.all([
    spawnGateway('initiating', directory, { XCAI_AUDIT_TRANSPORT: 'off' }),
    spawnGateway('initiating', directory, {
      XCAI_AUDIT_TRANSPORT: 'tls',
      XCAI_AUDIT_HOST: '127.0.0.1',
      XCAI_AUDIT_PORT: String(arr.port),
      XCAI_AUDIT_TLS_CERT: path.join(certDir, 'gw.crt'),
      XCAI_AUDIT_TLS_KEY: path.join(certDir, 'gw.key'),
      XCAI_AUDIT_TLS_CA: path.join(certDir, 'ca.crt'),
      XCAI_AUDIT_TLS_SERVERNAME: 'arr',
      XCAI_AUDIT_SPOOL_DIR: spool,
      XCAI_AUDIT_RATE: '2000',
    }),
  ]);

  const query = encodeFindDocumentsRequest(PATIENT);
  const docs = m.documentEntries
    .filter((d) => d.patientId === PATIENT)
    .map((d) => ({
      homeCommunityId: m.homeCommunityId,
      repositoryUniqueId: d.repositoryUniqueId,
      documentUniqueId: d.uniqueId,
    }));
  const study = m.patients.find((p) => p.id === PATIENT)!.studies[0]!;
  const rad69 = encodeRetrieveImagingDocumentSetRequest({
    studies: [
      {
        studyInstanceUid: study.studyInstanceUid,
        series: study.series.map((s) => ({
          seriesInstanceUid: s.seriesInstanceUid,
          documents: s.instances.map((i) => ({
            homeCommunityId: m.homeCommunityId,
            repositoryUniqueId: m.idsRepositoryUniqueId,
            documentUniqueId: i.sopInstanceUid,
          })),
        })),
      },
    ],
    transferSyntaxUids: ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'],
  });
  const txs: { name: string; call: (g: GatewayProcess) => Promise<void> }[] = [
    {
      name: 'ITI-18 FindDocuments',
      call: async (g) => {
        const a = await soapCall(`${g.url}/iti18`, Action.ITI18, query);
        if (!a.xml.includes('ResponseStatusType:Success'))
          throw new Error(
            `ITI-18 (${a.status}): ${/<soap:Text[^>]*>([^<]*)/.exec(a.xml)?.[1] ?? a.xml.slice(0, 300)}`,
          );
      },
    },
    {
      name: `ITI-43 (${docs.length} KOS)`,
      call: async (g) => {
        const a = await retrieveCall(`${g.url}/iti43`, Action.ITI43, encodeRetrieveDocumentSetRequest(docs));
        if (a.registryStatus !== 'Success') throw new Error(`ITI-43: ${a.registryStatus}`);
      },
    },
    {
      name: `RAD-69 (${study.series.reduce((n, s) => n + s.instances.length, 0)} instances)`,
      call: async (g) => {
        const a = await retrieveCall(`${g.url}/rad69`, Action.RAD69, rad69);
        if (a.registryStatus !== 'Success') throw new Error(`RAD-69: ${a.registryStatus}`);
      },
    },
  ];

  const warm = smoke ? 3 : 50;
  const runs = Number(arg('--runs') ?? (smoke ? 10 : 300));
  const concs = (arg('--conc') ?? '1,8').split(',').map(Number);
  const time = async (f: () => Promise<void>): Promise<number> => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  console.log(
    `audit overhead: ${runs} requests per transaction and gateway, alternating audit off / on` +
      `${smoke ? ' (smoke)' : ''}; audit on = RFC 5425 mutual TLS to the ARR process, fsync'd spool`,
  );
  let worst = 0;
  for (const conc of concs) {
    for (const tx of txs.filter((t) => !only || t.name.includes(only))) {
      const lat = { off: [] as number[], on: [] as number[] };
      for (let i = 0; i < warm + runs; i++) {
        // Alternate which goes first, so drift and caches hit both alike.
        const order: ('off' | 'on')[] = i % 2 ? ['off', 'on'] : ['on', 'off'];
        for (const which of order) {
          const g = which === 'off' ? off : on;
          const ts = await Promise.all(Array.from({ length: conc }, () => time(() => tx.call(g))));
          if (i >= warm) lat[which].push(...ts);
        }
      }
      const ratio = pct(lat.on, 50) / pct(lat.off, 50);
      worst = Math.max(worst, ratio);
      console.log(
        `  ${conc === 1 ? 'one at a time' : `${conc} at a time `}  ${tx.name.padEnd(24)} ` +
          `off p50 ${pct(lat.off, 50).toFixed(2)} ms p95 ${pct(lat.off, 95).toFixed(2)} ms | ` +
          `on p50 ${pct(lat.on, 50).toFixed(2)} ms p95 ${pct(lat.on, 95).toFixed(2)} ms | p50 ratio ${ratio.toFixed(3)}`,
      );
    }
  }

  // Everything the audited gateway spooled reached the repository.
  await on.stop();
  await off.stop();
  const spooled = loadAuditRecords([spool]).length;
  await waitFor(() => loadAuditRecords([arrDir]).length >= spooled, 30_000, 'records at the repository');
  console.log(`  ${spooled} audit records written and delivered to the repository`);
  console.log(
    `  worst p50 ratio ${worst.toFixed(3)} (goal ≤ ${GOAL})${worst <= GOAL ? '' : '  GOAL NOT MET'}`,
  );
  arr.proc.kill('SIGTERM');
  await ref.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
  if (!smoke && worst > GOAL) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
