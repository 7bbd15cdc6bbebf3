import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemoEndpoints } from '../../services/reference-community/src/demo/federation';
import { ROOT } from './federation';
import { FILE_PREFIX } from './redis';

export interface RunningDemo {
  endpoints: DemoEndpoints;
  /** The environment the demo runs with (DEMO_*), for the demo consumer. */
  env: NodeJS.ProcessEnv;
  output(): string;
  /** SIGTERM, as Ctrl-C would; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Sends the federation a signal (SIGUSR2: restart the next responding gateway). */
  signal(sig: NodeJS.Signals): void;
  /** The federation's exit code, once it exited (a service that died takes it down). */
  exited(): number | null | undefined;
}

/**
 * Runs `npm start`'s federation (built) in `dir` as a user would, until it says it is ready; `args`
 * as after `npm run demo --` (e.g. `--orthanc`).
 */
export async function startDemo(
  dir: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<RunningDemo> {
  const federation = join(ROOT, 'services/reference-community/dist/demo/federation.js');
  if (!existsSync(federation)) throw new Error('run "npm run build" before the end-to-end tests');
  const endpointsFile = join(dir, 'endpoints.json');
  const demoEnv = {
    ...process.env,
    DEMO_RUN_DIR: join(dir, 'run'),
    DEMO_ENDPOINTS_FILE: endpointsFile,
    XCAI_REDIS_PREFIX: FILE_PREFIX,
    ...env,
  };
  const proc = spawn(process.execPath, [federation, ...args], {
    env: demoEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r((exitCode = code))));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (out.includes('demo federation is ready')) {
        clearInterval(t);
        resolve();
      }
    }, 100);
    void exited.then((code) => {
      clearInterval(t);
      reject(new Error(`demo federation exited (${code}):\n${out}`));
    });
  });
  return {
    endpoints: JSON.parse(readFileSync(endpointsFile, 'utf8')) as DemoEndpoints,
    env: demoEnv,
    output: () => out,
    signal: (sig) => void proc.kill(sig),
    exited: () => exitCode,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Runs a built script to its end, collecting its output. */
export function runScript(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [file, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    p.once('exit', (code) => resolve({ code, out }));
  });
}
