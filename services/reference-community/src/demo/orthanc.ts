/**
 * A real Orthanc with its DICOMweb plugin (Debian's `orthanc`, `orthanc-dicomweb`), for
 * `npm run demo -- --orthanc` (the community whose images live in a PACS behind the imaging-source
 * bridge) and for the bridge's tests and benchmark (test/support/orthanc.ts).
 *
 * Orthanc binds 0.0.0.0 and has no option to change it, so it runs in a network namespace of its
 * own (`unshare -n`, only `lo` up): nothing outside can reach it. A small forwarder inside the
 * namespace accepts on a Unix socket in the run folder and connects to Orthanc's loopback port;
 * in the tests' own namespace another forwarder listens on 127.0.0.1 (random port) and connects to
 * that socket. So the bridge, the demo, the tests and the benchmarks reach Orthanc at
 * http://127.0.0.1:PORT/dicom-web while Orthanc itself is on no interface but its namespace's
 * loopback. The DICOM port is off, remote access off, HTTP authentication on (a password made per
 * run), storage in a temporary folder (or the one given) removed at stop.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { request } from 'undici';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

/** Orthanc and its plugin are installed, and network namespaces can be made here. */
export function orthancAvailable(): boolean {
  if (!existsSync(ORTHANC_BIN) || !existsSync(DICOMWEB_PLUGIN)) return false;
  return spawnSync('unshare', ['-n', 'true']).status === 0;
}

export interface RunningOrthanc {
  /** DICOMweb base URL, reached through the forwarders. */
  dicomWeb: string;
  /** `user:password` for HTTP basic authentication. */
  credentials: string;
  /** A file holding `credentials` (the bridge's local.archive.auth.basicFile). */
  basicFile: string;
  dir: string;
  /** STOW-RS of Part 10 files, in batches; returns how many instances Orthanc stored. */
  stow(files: string[]): Promise<number>;
  /** Process ids (for CPU figures): the forwarder inside the namespace, and Orthanc itself. */
  pids(): { forwarder: number; orthanc?: number };
  /** Makes the host-side forwarder refuse connections (the archive "goes down") or accept again. */
  setReachable(up: boolean): Promise<void>;
  stop(): Promise<void>;
}

const INNER = String.raw`
const { spawn } = require('node:child_process');
const net = require('node:net');
const fs = require('node:fs');
const [cfg, sock, port, log] = process.argv.slice(2);
const orthanc = spawn('/usr/sbin/Orthanc', [cfg], { stdio: ['ignore', fs.openSync(log, 'a'), fs.openSync(log, 'a')] });
orthanc.on('exit', (code) => { process.stderr.write('orthanc exited ' + code + '\n'); process.exit(1); });
process.on('uncaughtException', (e) => { orthanc.kill('SIGKILL'); process.stderr.write(String(e.stack) + '\n'); process.exit(1); });
const server = net.createServer((c) => {
  const o = net.connect(Number(port), '127.0.0.1');
  c.pipe(o).pipe(c);
  c.on('error', () => o.destroy());
  o.on('error', () => c.destroy());
});
server.listen(sock, () => process.stdout.write('listening\n'));
const stop = () => { orthanc.removeAllListeners('exit'); orthanc.once('exit', () => process.exit(0)); orthanc.kill('SIGTERM'); setTimeout(() => orthanc.kill('SIGKILL'), 10000).unref(); };
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
`;

export async function startOrthanc(o: { user?: string; dir?: string } = {}): Promise<RunningOrthanc> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'xcai-orthanc-'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const user = o.user ?? 'xcai';
  const password = randomBytes(12).toString('hex');
  const credentials = `${user}:${password}`;
  const basicFile = join(dir, 'archive-basic');
  writeFileSync(basicFile, credentials, { mode: 0o600 });
  const httpPort = 8042;
  const config = {
    Name: 'xcai-test-archive',
    StorageDirectory: join(dir, 'db'),
    IndexDirectory: join(dir, 'db'),
    Plugins: [DICOMWEB_PLUGIN],
    HttpServerEnabled: true,
    HttpPort: httpPort,
    DicomServerEnabled: false,
    DicomPort: 4242,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [user]: password },
    WebDavEnabled: false,
    OrthancExplorerEnabled: false,
    HttpCompressionEnabled: false,
    StorageCompression: false,
    SaveJobs: false,
    ExecuteLuaEnabled: false,
    MetricsEnabled: false,
    StableAge: 1,
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false },
  };
  writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'inner.js'), INNER);
  // A Unix socket path has at most 107 bytes: a deep run folder gets its socket in the temp directory.
  const sockDir = join(dir, 'orthanc.sock').length < 100 ? dir : mkdtempSync(join(tmpdir(), 'xcai-orthanc-'));
  const sock = join(sockDir, 'orthanc.sock');
  const ns: ChildProcess = spawn(
    'unshare',
    [
      '-n',
      'sh',
      '-c',
      'ip link set lo up && exec "$0" "$@"',
      process.execPath,
      join(dir, 'inner.js'),
      join(dir, 'orthanc.json'),
      sock,
      String(httpPort),
      join(dir, 'orthanc.log'),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let err = '';
  ns.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  await new Promise<void>((res, rej) => {
    ns.stdout?.once('data', () => res());
    ns.once('exit', (code) => rej(new Error(`Orthanc namespace exited (${code}): ${err}`)));
  });
  let reachable = true;
  const outer: Server = createServer((c) => {
    if (!reachable) {
      c.destroy();
      return;
    }
    const u = createConnection(sock);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => outer.listen(0, '127.0.0.1', r));
  const port = (outer.address() as { port: number }).port;
  const base = `http://127.0.0.1:${port}`;
  const auth = `Basic ${Buffer.from(credentials).toString('base64')}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await request(`${base}/system`, { headers: { authorization: auth } });
      await r.body.dump();
      if (r.statusCode === 200) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`Orthanc did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const stopped = new Promise<void>((r) => ns.once('exit', () => r()));
  return {
    dicomWeb: `${base}/dicom-web`,
    credentials,
    basicFile,
    dir,
    async stow(files) {
      let stored = 0;
      for (let i = 0; i < files.length; i += 20)
        stored += await stowBatch(base, auth, files.slice(i, i + 20));
      return stored;
    },
    pids() {
      const forwarder = ns.pid!;
      let children = '';
      try {
        children = readFileSync(`/proc/${forwarder}/task/${forwarder}/children`, 'utf8');
      } catch {
        /* gone */
      }
      const [orthanc] = children.trim().split(/\s+/).filter(Boolean).map(Number);
      return { forwarder, orthanc };
    },
    async setReachable(up) {
      reachable = up;
    },
    async stop() {
      outer.close();
      ns.stdin?.end();
      ns.kill('SIGTERM');
      await stopped;
      rmSync(dir, { recursive: true, force: true });
      rmSync(sockDir, { recursive: true, force: true });
    },
  };
}

async function stowBatch(base: string, auth: string, files: string[]): Promise<number> {
  const boundary = `stow${randomBytes(12).toString('hex')}`;
  const body = new PassThrough();
  const write = async () => {
    for (const f of files) {
      body.write(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
      for await (const c of createReadStream(f))
        if (!body.write(c)) await new Promise((r) => body.once('drain', r));
      body.write('\r\n');
    }
    body.end(`--${boundary}--\r\n`);
  };
  const writing = write();
  const res = await request(`${base}/dicom-web/studies`, {
    method: 'POST',
    headers: {
      authorization: auth,
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: 'application/dicom+json',
    },
    body,
  });
  await writing;
  const json = (await res.body.json()) as Record<string, { Value?: unknown[] }>;
  if (res.statusCode !== 200 && res.statusCode !== 202)
    throw new Error(`STOW-RS answered HTTP ${res.statusCode}`);
  return json['00081199']?.Value?.length ?? 0;
}
