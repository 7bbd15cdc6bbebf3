/**
 * What the benchmarks under test/bench/ share: their command line, large generated studies (cached in
 * the temp directory), a RAD-69 consumer that checks what it receives, a plain HTTP pass-through
 * process (the baseline chains' stand-in for a gateway), and per-process CPU figures from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import {
  Action,
  cidFromHref,
  contentIdKey,
  decodeEnvelope,
  decodeRetrieveDocumentSetResponse,
  encodeEnvelope,
  encodeRetrieveImagingDocumentSetRequest,
  MtomWriter,
  newMessageId,
  readSoapMessage,
  type ImagingRequest,
} from '@xcai/shared';
import { generateCommunitySeed } from '../../services/reference-community/src/seed/generate';
import { largeSeedSpec } from '../../services/reference-community/src/seed/specs';
import { rss } from './processes';
import type { ManifestInstance, SeedManifest } from '../../services/reference-community/src/seed/types';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const EXPLICIT = '1.2.840.10008.1.2.1';
export const IMPLICIT = '1.2.840.10008.1.2';

/** `--name value` from the command line, else `def`. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

/**
 * The retrieve benchmarks' common command line: `--smoke`, `--runs N` (default 3; 1 in smoke),
 * `--verify all|sample`, `--only LABEL[,LABEL…]`, `--tls` / `--no-tls` (one transport only; default
 * both, TLS first), `--plot FILE.svg`; and their studies: 4,000 and 1,000 instances of 512 KiB
 * (2 GiB, 0.5 GiB), or 40 and 10 in smoke mode (still past the 16 MiB lookahead); `concurrent`
 * consumers each with its own study of `small` instances (8, or 2 in smoke); a `latencyInstances`
 * study asked `latencyReps` times; a study of `many` instances of `manySize` bytes.
 */
export function retrieveBenchOptions() {
  const smoke = process.argv.includes('--smoke');
  const tls = process.argv.includes('--tls');
  const plain = process.argv.includes('--no-tls');
  return {
    smoke,
    runs: Number(arg('runs', smoke ? '1' : '3')),
    verifyAll: arg('verify', 'sample') === 'all',
    only: arg('only', ''),
    transports: (tls === plain ? ['tls', 'plain'] : tls ? ['tls'] : ['plain']) as ('tls' | 'plain')[],
    plot: arg('plot', ''),
    size: 512 * KiB,
    large: smoke ? 40 : 4000,
    small: smoke ? 10 : 1000,
    concurrent: Number(arg('concurrent', smoke ? '2' : '8')),
    concurrentRuns: Number(arg('concurrent-runs', '1')),
    latencyInstances: 20,
    latencyReps: Number(arg('latency-reps', smoke ? '3' : '100')),
    many: Number(arg('many', smoke ? '200' : '20000')),
    manySize: 8 * KiB,
  };
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const fmtMiB = (b: number): string => `${(b / MiB).toFixed(0)} MiB`;

const SEED_VERSION = 'v1';

/**
 * A seed of `studies` studies (default one) of `instances` × `size` bytes each (series of at most
 * 1,000), one patient, generated once per machine into the temp directory. Another `communityOid`
 * gives studies with other UIDs.
 */
export async function benchSeed(
  instances: number,
  size: number,
  communityOid?: string,
  studies = 1,
): Promise<string> {
  const dir = join(
    tmpdir(),
    `xcai-bench-large-${SEED_VERSION}-${instances}x${size}${studies > 1 ? `x${studies}` : ''}${communityOid ? `-${communityOid}` : ''}-${process.getuid?.() ?? 0}`,
  );
  if (existsSync(join(dir, 'done'))) return dir;
  const t0 = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'xcai-bench-seeding-'));
  const spec = largeSeedSpec({ instances, instanceSize: size, communityOid });
  const [study] = spec.patients[0].studies;
  spec.patients[0].studies = Array.from({ length: studies }, (_, k) =>
    k === 0 ? study : { ...study, description: `${study.description} ${k + 1}` },
  );
  await generateCommunitySeed(spec, work);
  mkdirSync(join(work, 'done'));
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  console.log(
    `generated ${studies > 1 ? `${studies} studies of ` : ''}${instances} × ${size / KiB} KiB seed in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${dir}`,
  );
  return dir;
}

export function readManifest(seedDir: string): SeedManifest {
  return JSON.parse(readFileSync(join(seedDir, 'manifest.json'), 'utf8')) as SeedManifest;
}

export interface Study {
  request: ImagingRequest;
  instances: Map<string, ManifestInstance>;
  bytes: number;
  studyInstanceUid: string;
  /** The requested instances by series. */
  series: { seriesInstanceUid: string; instances: ManifestInstance[] }[];
}

/**
 * A RAD-69 for the first `count` instances of the seeded study (the first, or `studyIndex`; series by
 * series), asked of `repositoryUniqueId` (default: the seed's Imaging Document Source).
 */
export function studyRequest(
  m: SeedManifest,
  count: number,
  repositoryUniqueId?: string,
  studyIndex = 0,
): Study {
  const study = m.patients[0].studies[studyIndex];
  const instances = new Map<string, ManifestInstance>();
  let bytes = 0;
  const series: Study['series'] = [];
  for (const s of study.series) {
    const take = s.instances.slice(0, count - instances.size);
    if (!take.length) break;
    for (const i of take) {
      instances.set(i.sopInstanceUid, i);
      bytes += i.size;
    }
    series.push({ seriesInstanceUid: s.seriesInstanceUid, instances: take });
  }
  return {
    request: {
      studies: [
        {
          studyInstanceUid: study.studyInstanceUid,
          series: series.map((s) => ({
            seriesInstanceUid: s.seriesInstanceUid,
            documents: s.instances.map((i) => ({
              homeCommunityId: m.homeCommunityId,
              repositoryUniqueId: repositoryUniqueId ?? m.idsRepositoryUniqueId,
              documentUniqueId: i.sopInstanceUid,
            })),
          })),
        },
      ],
      transferSyntaxUids: [EXPLICIT, IMPLICIT],
    },
    instances,
    bytes,
    studyInstanceUid: study.studyInstanceUid,
    series,
  };
}

export interface Answer {
  ms: number;
  parts: number;
  bytes: number;
  wireBytes: number;
  /** Body chunks the consumer's HTTP client delivered (HTTP chunks, split by socket reads). */
  wireChunks: number;
  hashed: number;
}

export const mibs = (a: { bytes: number; ms: number }): number => a.bytes / MiB / (a.ms / 1000);

const LIMITS = {
  maxRootBytes: 64 * MiB,
  maxPartHeaderBytes: 16 * KiB,
  maxParts: 100_000,
  maxTotalBytes: 2 ** 40,
};

/** Counts a part's bytes and checks them against the manifest (SHA-1 when `hash`). */
export async function checkPart(
  body: AsyncIterable<unknown>,
  uid: string,
  inst: ManifestInstance,
  hash: boolean,
): Promise<number> {
  const h = hash ? createHash('sha1') : undefined;
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    h?.update(c as Buffer);
  }
  if (n !== inst.size) throw new Error(`${uid}: ${n} bytes, expected ${inst.size}`);
  if (h && h.digest('hex') !== inst.sha1) throw new Error(`${uid}: SHA-1 differs from the manifest`);
  return n;
}

export interface RetrieveOptions {
  /** The consumer's HTTP client (e.g. one presenting a client certificate); default undici's global one. */
  dispatcher?: Dispatcher;
  /** Called with the size of every body chunk received (progress, for plots). */
  onBytes?: (n: number) => void;
}

/**
 * Sends the RAD-69 as MTOM and consumes the answer as a consumer would: parses the package, counts
 * parts and bytes, checks the SHA-1 of every instance (`verifyAll`) or of every 16th against the
 * manifest. Throws unless every instance came back whole.
 */
export async function retrieveRad69(
  url: string,
  study: Study,
  verifyAll = false,
  o: RetrieveOptions = {},
): Promise<Answer> {
  const action = Action.RAD69;
  const chunks: Buffer[] = [];
  const w = new MtomWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), {
    action,
  });
  const body = encodeRetrieveImagingDocumentSetRequest(study.request);
  await w.writeRoot(encodeEnvelope({ action, messageId: newMessageId(), to: url, body, request: true }));
  await w.end();
  const t0 = performance.now();
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': w.contentType },
    body: Buffer.concat(chunks),
    ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
  });
  let wireBytes = 0;
  let wireChunks = 0;
  res.body.on('data', (c: Buffer) => {
    wireBytes += c.length;
    wireChunks++;
    o.onBytes?.(c.length);
  });
  const msg = await readSoapMessage(res.body, String(res.headers['content-type']), LIMITS);
  const env = decodeEnvelope(
    msg.envelope,
    { maxBytes: 64 * MiB, maxTextLength: 64 * MiB, maxElements: 5_000_000 },
    false,
  );
  if (env.payload.local === 'Fault') {
    const reason = /<(?:\w+:)?Text[^>]*>([^<]*)</.exec(String(msg.envelope))?.[1] ?? '';
    throw new Error(`${url}: HTTP ${res.statusCode}, SOAP Fault: ${reason.slice(0, 300)}`);
  }
  const root = decodeRetrieveDocumentSetResponse(env.payload);
  if (root.status !== 'Success' || root.errors.length) {
    throw new Error(
      `${url}: status ${root.status}, ${root.errors.length} error(s): ${root.errors[0]?.codeContext ?? ''}`,
    );
  }
  const byCid = new Map<string, string>();
  for (const d of root.documents) {
    if (d.content.kind !== 'xop') throw new Error('inline document in the answer');
    byCid.set(contentIdKey(cidFromHref(d.content.href)), d.documentUniqueId);
  }
  let parts = 0;
  let bytes = 0;
  let hashed = 0;
  for (let p = await msg.attachments.next(); p; p = await msg.attachments.next()) {
    const uid = byCid.get(contentIdKey(p.headers.contentId ?? ''));
    const inst = uid === undefined ? undefined : study.instances.get(uid);
    if (!inst || uid === undefined)
      throw new Error(`part ${p.headers.contentId} is not an instance asked for`);
    const hash = verifyAll || parts % 16 === 0;
    const n = await checkPart(p.body, uid, inst, hash);
    bytes += n;
    if (hash) hashed++;
    parts++;
  }
  const ms = performance.now() - t0;
  if (parts !== study.instances.size || bytes !== study.bytes) {
    throw new Error(`${parts} parts / ${bytes} bytes, expected ${study.instances.size} / ${study.bytes}`);
  }
  return { ms, parts, bytes, wireBytes, wireChunks, hashed };
}

/**
 * A plain Node http(s) pass-through: request and response piped, no parsing. With `tls` in its
 * settings it terminates TLS as a gateway does (certificate, client certificate asked for and
 * required or not, TLS ≥ 1.2, the gateways' cipher list in server order); towards an https target it
 * originates TLS presenting its client certificate, verifying the target against `ca`.
 */
const PROXY = `
const http = require('node:http');
const https = require('node:https');
const { readFileSync } = require('node:fs');
const target = new URL(process.argv[1]);
const o = JSON.parse(process.env.XCAI_BENCH_PROXY || '{}');
const file = (f) => (f ? readFileSync(f) : undefined);
const tls = o.tls && {
  cert: file(o.tls.cert), key: file(o.tls.key), ca: [file(o.tls.ca)],
  minVersion: 'TLSv1.2', ciphers: o.tls.ciphers,
};
const secure = target.protocol === 'https:';
const agent = secure
  ? new https.Agent({ keepAlive: true, ...tls, rejectUnauthorized: true })
  : new http.Agent({ keepAlive: true });
const handler = (req, res) => {
  const up = (secure ? https : http).request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
    (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  res.on('close', () => { if (!res.writableFinished) up.destroy(); });
  req.pipe(up);
};
const server = o.tls && o.tls.serve
  ? https.createServer({ ...tls, honorCipherOrder: true, requestCert: true,
      rejectUnauthorized: o.tls.clientAuth === 'required' }, handler)
  : http.createServer(handler);
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.once('SIGTERM', () => process.exit(0));
`;

export interface Proc {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** TLS of a pass-through: its certificate (server and client), the CA it trusts, the ciphers. */
export interface ProxyTls {
  cert: string;
  key: string;
  ca: string;
  ciphers: string;
  /** Terminate TLS (else serve plain http and only originate TLS towards an https target). */
  serve: boolean;
  clientAuth: 'required' | 'optional';
}

/**
 * Starts a pass-through process in front of `target` (its origin; paths are passed on as they are);
 * `tls` as above.
 */
export async function spawnProxy(target: string, tls?: ProxyTls): Promise<Proc> {
  const proc = spawn(process.execPath, ['-e', PROXY, target], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, XCAI_BENCH_PROXY: JSON.stringify({ tls }) },
  });
  const line = await new Promise<string>((res, rej) => {
    createInterface({ input: proc.stdout! }).once('line', res);
    proc.once('exit', (code) => rej(new Error(`proxy exited (${code})`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return {
    url: `${tls?.serve ? 'https' : 'http'}://127.0.0.1:${port}`,
    proc,
    stop: () =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null) return res();
        proc.once('exit', () => res());
        proc.kill('SIGTERM');
      }),
  };
}

/** CPU time (user + system, seconds) and read/write system calls of a process so far, from /proc. */
export interface Usage {
  cpu: number;
  reads: number;
  writes: number;
}
export function usage(pid: number): Usage {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const num = (k: string) => Number(new RegExp(`${k}: (\\d+)`).exec(io)?.[1] ?? NaN);
  // utime, stime in clock ticks (USER_HZ = 100)
  return { cpu: (Number(f[11]) + Number(f[12])) / 100, reads: num('syscr'), writes: num('syscw') };
}

/** One look at the processes: seconds since the start, consumer bytes, RSS and CPU-s per process. */
export interface Sample {
  t: number;
  bytes: number;
  rss: number[];
  cpu: number[];
}

/**
 * Samples `pids` (RSS, CPU time) and the consumer's byte count every `everyMs` until stopped; a
 * process that is gone reads as 0.
 */
export function sampler(pids: number[], bytes: () => number, everyMs = 100): { stop(): Sample[] } {
  const t0 = performance.now();
  const out: Sample[] = [];
  const look = () => {
    const safe = <T>(f: () => T, d: T) => {
      try {
        return f();
      } catch {
        return d;
      }
    };
    out.push({
      t: (performance.now() - t0) / 1000,
      bytes: bytes(),
      rss: pids.map((p) => safe(() => rss(p), 0)),
      cpu: pids.map((p) => safe(() => usage(p).cpu, 0)),
    });
  };
  look();
  const timer = setInterval(look, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      look();
      return out;
    },
  };
}
