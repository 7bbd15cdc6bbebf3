import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { ROOT } from './federation';

export interface GatewayProcess {
  url: string;
  mgmtUrl?: string;
  proc: ChildProcess;
  /** Everything the process wrote (JSON log lines). */
  output: string[];
  stop(): Promise<void>;
}

/**
 * Starts a gateway as its own process (`node services/<role>-gateway/dist/main.js`), configured
 * through the environment as in production; resolves when it logs "gateway started".
 */
export async function spawnGateway(
  role: 'initiating' | 'responding',
  directory: unknown,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<GatewayProcess> {
  const main = join(ROOT, `services/${role}-gateway/dist/main.js`);
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
    proc,
    output,
    stop: () =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return res();
        proc.once('exit', () => res());
        proc.kill('SIGTERM');
      }),
  };
}

/** Peak resident set size of a process, from /proc (Linux), in bytes. */
export function peakRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
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
