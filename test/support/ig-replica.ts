/**
 * An initiating-gateway replica as its own process (from dist/), configured by environment as in a
 * deployment: for the replica and Redis high-availability tests (hand-over, Sentinel, Cluster, TLS).
 * Keeps warnings and the messages a test names; stopped by the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './federation';

export interface IgReplica {
  url: string;
  /** Management base URL (/readyz), when XCAI_MGMT_PORT was not -1. */
  mgmt?: string;
  proc: ChildProcess;
  logs: Record<string, unknown>[];
  stderr(): string;
  stop(): Promise<void>;
}

const KEEP = /^(warn|error)$/;

export async function spawnIgReplica(o: {
  dir: string;
  name: string;
  directory: unknown;
  env: Record<string, string>;
  /** Messages to keep at info level (warnings and errors are always kept). */
  keep?: RegExp;
}): Promise<IgReplica> {
  const main = join(ROOT, 'services/initiating-gateway/dist/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first`);
  const dirFile = join(o.dir, `${o.name}.json`);
  writeFileSync(dirFile, JSON.stringify(o.directory));
  const proc = spawn(process.execPath, [main], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      XCAI_DIRECTORY: dirFile,
      XCAI_HOST: '127.0.0.1',
      XCAI_PORT: '0',
      XCAI_MGMT_PORT: '-1',
      XCAI_LOG_LEVEL: 'info',
      ...o.env,
    },
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(l) as Record<string, unknown>;
      } catch {
        return;
      }
      if (KEEP.test(String(rec.level)) || o.keep?.test(String(rec.msg))) logs.push(rec);
      if (rec.msg === 'gateway started') resolve(rec);
    });
    proc.once('exit', (code) =>
      reject(new Error(`gateway ${o.name} exited (${code}): ${stderr.slice(-2000)}`)),
    );
  });
  return {
    url: started.url as string,
    mgmt: started.mgmt as string | undefined,
    proc,
    logs,
    stderr: () => stderr,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}
