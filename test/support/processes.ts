import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { ROOT } from './federation';
import { FILE_PREFIX } from './redis';

export interface GatewayProcess {
  url: string;
  mgmtUrl?: string;
  /** The directory file it was started with (tests edit it to reload). */
  directoryFile: string;
  proc: ChildProcess;
  /** Everything the process wrote (JSON log lines). */
  output: string[];
  stop(): Promise<void>;
}

/**
 * Starts a gateway (or the imaging-source bridge) as its own process
 * (`node services/<role>-gateway/dist/main.js`, `services/imaging-source/dist/main.js`), configured
 * through the environment as in production; resolves when it logs "gateway started".
 */
export async function spawnGateway(
  role: 'initiating' | 'responding' | 'imaging-source',
  directory: unknown,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<GatewayProcess> {
  const main = join(ROOT, `services/${role === 'imaging-source' ? role : `${role}-gateway`}/dist/main.js`);
  if (!existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first`);
  const dir = mkdtempSync(join(tmpdir(), `xcai-${role}-`));
  const file = join(dir, 'directory.json');
  writeFileSync(file, JSON.stringify(directory));
  const proc = spawn(process.execPath, [...nodeArgs, main], {
    env: {
      ...process.env,
      XCAI_DIRECTORY: file,
      XCAI_PORT: '0',
      XCAI_MGMT_PORT: '0',
      XCAI_HOST: '127.0.0.1',
      XCAI_LOG_LEVEL: 'info',
      // Each gateway keeps its local audit trail next to its directory file (not in /var/lib).
      XCAI_AUDIT_SPOOL_DIR: join(dir, 'audit'),
      XCAI_REDIS_PREFIX: FILE_PREFIX,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  proc.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  const started = await new Promise<{ url: string; mgmt?: string }>((res, rej) => {
    const rl = createInterface({ input: proc.stdout! });
    const timer = setTimeout(
      () => rej(new Error(`${role} gateway did not start: ${output.join('')}`)),
      20_000,
    );
    rl.on('line', (l) => {
      output.push(l);
      try {
        const rec = JSON.parse(l) as { msg?: string; url?: string; mgmt?: string };
        if (rec.msg === 'gateway started' && rec.url) {
          clearTimeout(timer);
          res({ url: rec.url, mgmt: rec.mgmt });
        }
      } catch {
        /* not a log line */
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${role} gateway exited (${code}): ${output.join('\n')}`));
    });
  });
  return {
    url: started.url,
    mgmtUrl: started.mgmt,
    directoryFile: file,
    proc,
    output,
    stop: () =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return res();
        // A process that does not stop within 15 s is killed (its state is not the test's concern).
        const kill = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        proc.once('exit', () => {
          clearTimeout(kill);
          res();
        });
        proc.kill('SIGTERM');
      }),
  };
}

/** Peak resident set size of a process, from /proc (Linux), in bytes. */
export function peakRss(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

/** Resident set size of a process now (VmRSS), in bytes. */
export function rss(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

function statusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** The base URL of a loopback port nobody listens on (a peer that is down). */
export async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** The environment of a gateway serving mutual TLS with `name`'s certificate from a test PKI. */
export function tlsEnv(
  pki: { cert(n: string): string; key(n: string): string; ca: string },
  name: string,
  clientAuth: 'required' | 'optional',
): Record<string, string> {
  return {
    XCAI_TLS_CERT: pki.cert(name),
    XCAI_TLS_KEY: pki.key(name),
    XCAI_TLS_CA: pki.ca,
    XCAI_TLS_CLIENT_AUTH: clientAuth,
  };
}

export interface ArrProcess {
  host: string;
  port: number;
  dir: string;
  proc: ChildProcess;
  /** SIGSTOP: the process keeps its sockets but reads nothing (the kernel still accepts bytes). */
  freeze(): void;
  /** SIGKILL, resolved once it is gone. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the product's Audit Record Repository as its own process (shared/dist/audit/repository-main.js);
 * resolves when it listens. `port` 0 picks a free one.
 */
export async function spawnAuditRepository(o: {
  dir: string;
  port: number;
  cert: string;
  key: string;
  ca: string;
}): Promise<ArrProcess> {
  const main = join(ROOT, 'shared/dist/audit/repository-main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first`);
  const proc = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      XCAI_ARR_DIR: o.dir,
      XCAI_ARR_HOST: '127.0.0.1',
      XCAI_ARR_PORT: String(o.port),
      XCAI_ARR_TLS_CERT: o.cert,
      XCAI_ARR_TLS_KEY: o.key,
      XCAI_ARR_TLS_CA: o.ca,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const started = await new Promise<{ host: string; port: number }>((res, rej) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (l) => {
      try {
        const rec = JSON.parse(l) as { msg?: string; host: string; port: number };
        if (rec.msg === 'audit repository started') res(rec);
      } catch {
        /* not a log line */
      }
    });
    proc.once('exit', (code) => rej(new Error(`audit repository exited (${code}): ${stderr}`)));
  });
  const gone = () =>
    new Promise<void>((res) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return res();
      proc.once('exit', () => res());
    });
  return {
    ...started,
    dir: o.dir,
    proc,
    freeze: () => proc.kill('SIGSTOP'),
    kill: () => {
      const g = gone();
      proc.kill('SIGKILL');
      return g;
    },
    stop: () => {
      const g = gone();
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      return g;
    },
  };
}
