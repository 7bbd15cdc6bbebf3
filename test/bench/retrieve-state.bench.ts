/**
 * Retrieve state per instance (issue 17): what a RAD-75 transaction at the responding gateway holds
 * while its MTOM answer streams, per SOP instance asked for. Run by hand:
 * `node test/bench/run.js retrieve-state [--smoke] [--instances N]` (after `npx tsc -b tsconfig.build.json`;
 * each measurement is a child process run with node's --expose-gc).
 *
 * Through the real code: the request envelope is decoded from its XML (`decodeEnvelope`), then the
 * transaction's own stages run — decode, validate, plan (routing to the Imaging Document Source),
 * merge (against a sub-answer root decoded from XML, its parts still to come, as while streaming)
 * and encode; then the engine's `sendReply` writes the reply root to a consumer and waits for the
 * first part. Everything the engine holds while the parts stream is kept alive (context, request,
 * plan, outcomes, result, reply, writer), then the heap is measured after `global.gc()`, each size in a process of its own, against the same
 * with 1 instance (an empty request is refused before it plans) in the same run. Prints bytes per instance and the ratio to the 1 KiB target (goal ≤ 1), and checks
 * that the result still names every instance. `--smoke`: 500 instances, one round.
 */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import {
  type Ctx,
  decodeEnvelope,
  encodeDocumentResponse,
  encodeEnvelope,
  encodeRetrieveDocumentSetResponse,
  encodeRetrieveImagingDocumentSetRequest,
  execute,
  sendReply,
  readDirectory,
  Deadline,
  type AnyTransaction,
  type CallHooks,
  type RetrieveCall,
} from '@xcai/shared';
import { rad75 } from '../../services/responding-gateway/src/transactions/rad75';

const argv = process.argv.slice(2);
const smoke = argv.includes('--smoke');
const at = argv.indexOf('--instances');
const N = at >= 0 ? Number(argv[at + 1]) : smoke ? 500 : 20_000;
const ROUNDS = smoke ? 1 : 3;
const TARGET = 1024;

const HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.200';
const REPO = '1.3.6.1.4.1.21367.13.80.200';
const TS = ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'];
const uid = (prefix: string, i: number) => `1.2.826.0.1.3680043.10.543.${prefix}.${20000000 + i}`;

const directory = readDirectory({
  homeCommunityId: HOME,
  local: { imagingDocumentSources: [{ repositoryUniqueId: REPO, url: 'http://127.0.0.1:9/ids' }] },
});

function requestXml(n: number): string {
  const series = Array.from({ length: Math.max(1, Math.ceil(n / 500)) }, (_, s) => ({
    seriesInstanceUid: uid('2', s),
    documents: Array.from({ length: Math.min(500, n - s * 500) }, (_, k) => ({
      homeCommunityId: HOME,
      repositoryUniqueId: REPO,
      documentUniqueId: uid('3', s * 500 + k),
    })),
  }));
  const body = encodeRetrieveImagingDocumentSetRequest({
    studies: [{ studyInstanceUid: uid('1', 0), series: n ? series : [] }],
    transferSyntaxUids: TS,
  });
  return encodeEnvelope({ action: rad75.requestAction, body, request: true });
}

/** The Imaging Document Source's answer root to a sub-request: every instance it was asked for. */
function answerXml(uids: string[]): string {
  const docs = uids.map((u, i) =>
    encodeDocumentResponse(
      { homeCommunityId: HOME, repositoryUniqueId: REPO, documentUniqueId: u, mimeType: 'application/dicom' },
      `part${i}.${'x'.repeat(20)}@ids`,
    ),
  );
  return encodeEnvelope({
    action: rad75.responseAction,
    body: encodeRetrieveDocumentSetResponse(uids.length ? 'Success' : 'Failure', [], docs),
    request: false,
  });
}

/** A sub-answer whose parts have not arrived yet (the transaction is in flight). */
const pendingParts = () => ({
  next: () => new Promise<never>(() => undefined),
  discard: async () => undefined,
});

const nolog = { debug() {}, info() {}, warn() {}, error() {}, child: () => nolog };

async function inFlight(n: number): Promise<{ held: unknown; named: number; errors: number }> {
  const reqXml = requestXml(n);
  const envelope = decodeEnvelope(reqXml, { maxBytes: 64 * 1024 * 1024 }, true);
  const ctx = {
    gateway: {
      role: 'responding',
      directory,
      limits: { lookaheadBytes: 16 * 1024 * 1024 },
      audit: { record() {} },
      log: nolog,
      // Connection slots (the HTTP client is not used: the exchange hook answers).
      outbound: {
        reserve: async (_e: unknown, k: number) => Array.from({ length: k }, () => () => undefined),
      },
    },
    envelope,
    attachments: pendingParts(),
    caller: {},
    endpointUrl: 'https://127.0.0.1/rad75',
    // Short: the lookahead gives up waiting for parts at once and the merge commits its root.
    deadline: Deadline.in(30),
    signal: new AbortController().signal,
    log: nolog,
    humanRequestors: [],
  } as unknown as Ctx;
  // The real dispatch stage; its exchange answers with the sub-answer root decoded from XML (as
  // dispatch.ts decodes a peer's root), parts still to come.
  const hooks: CallHooks = {
    exchange: (call) =>
      Promise.resolve({
        envelope: decodeEnvelope(
          answerXml((call as RetrieveCall).requested.map((d) => d.documentUniqueId)),
          { maxBytes: 64 * 1024 * 1024 },
          false,
        ),
        attachments: pendingParts(),
      }),
  };
  const executed = await execute(rad75 as unknown as AnyTransaction, ctx, hooks);
  const res = executed.reply as { payload: string };
  const named = (res.payload.match(/DocumentUniqueId>/g) ?? []).length / 2;
  const errors = (res.payload.match(/<rs:RegistryError /g) ?? []).length;
  // The engine's own sendReply writes the root to a consumer that takes the bytes and then waits
  // (its parts are still to come from the Imaging Document Source).
  const out = Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), {
    writeHead: () => undefined,
  });
  const sending = sendReply(out as never, rad75 as unknown as AnyTransaction, ctx, executed.reply);
  await new Promise((r) => setImmediate(r));
  return { held: [ctx, executed, sending, out], named, errors };
}

function heap(): number {
  for (let i = 0; i < 4; i++) global.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** One measurement, in a process of its own: heap held by one transaction of `n` instances. */
async function child(n: number): Promise<void> {
  await inFlight(20); // warm up: code compiled, caches filled, before the first heap reading
  const h0 = heap();
  const x = await inFlight(n);
  const used = heap() - h0;
  if (x.named !== n || x.errors !== 0) {
    console.error(`FAIL: the reply root names ${x.named} of ${n} instances, ${x.errors} errors`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ used, keep: typeof x.held })}\n`);
}

function measure(n: number): number {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', ...process.execArgv, process.argv[1], 'retrieve-state', '--child', String(n)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    process.exit(r.status ?? 1);
  }
  return (JSON.parse(r.stdout.trim().split('\n').pop() as string) as { used: number }).used;
}

async function main(): Promise<void> {
  const ci = argv.indexOf('--child');
  if (ci >= 0) return child(Number(argv[ci + 1]));
  const per: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const base = measure(1);
    const used = measure(N);
    per.push((used - base) / (N - 1));
  }
  per.sort((a, b) => a - b);
  const med = per[Math.floor(per.length / 2)];
  console.log(
    `retrieve state (RAD-75 at the responding gateway, ${N} instances in flight, ${ROUNDS} round(s), each size in a fresh process): ` +
      `${med.toFixed(0)} B per instance (rounds: ${per.map((p) => p.toFixed(0)).join(', ')}), ` +
      `baseline 1 instance subtracted; ratio to the ${TARGET} B target ${(med / TARGET).toFixed(2)} (goal ≤ 1)`,
  );
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
