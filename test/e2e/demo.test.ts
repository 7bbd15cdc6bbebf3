/**
 * The README's first command: `npm start` (the federation) and `npm run demo:consumer`, run as a
 * user would, as separate processes over mutual TLS. Needs the build (npm test builds first).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/federation';

const run = promisify(execFile);

it('npm start runs the federation; the demo consumer fetches every study byte-identical; SIGTERM stops it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xcai-demo-'));
  const endpointsFile = join(dir, 'endpoints.json');
  const env = { ...process.env, DEMO_RUN_DIR: join(dir, 'run'), DEMO_ENDPOINTS_FILE: endpointsFile };
  const fed = spawn(process.execPath, [join(ROOT, 'services/reference-community/dist/demo/federation.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  fed.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  fed.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (out.includes('demo federation is ready')) {
          clearInterval(t);
          resolve();
        }
      }, 100);
      fed.once('exit', (code) => {
        clearInterval(t);
        reject(new Error(`federation exited (${code}):\n${out}`));
      });
    });
    const endpoints = JSON.parse(readFileSync(endpointsFile, 'utf8')) as {
      consumer: Record<string, string>;
      patients: { id: string; communities: string[] }[];
      communities: { homeCommunityId: string }[];
    };
    expect(endpoints.consumer.rad69).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/rad69$/);
    expect(endpoints.communities).toHaveLength(3);
    const patient = endpoints.patients.find((p) => p.communities.length === 3);
    expect(patient).toBeDefined();
    expect(out).toContain(patient!.id);

    const consumerDir = join(dir, 'consumer');
    const { stdout } = await run(
      process.execPath,
      [
        join(ROOT, 'services/reference-community/dist/demo/consumer.js'),
        '--patient',
        patient!.id,
        '--out',
        consumerDir,
      ],
      { env, maxBuffer: 16 << 20 },
    );
    for (const label of ['A', 'B', 'C']) {
      const m = new RegExp(
        `${label}: (\\d+) KOS, (\\d+) instance\\(s\\), [\\d.]+ MiB, (\\d+) byte-identical`,
      ).exec(stdout);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
      expect(Number(m![2])).toBeGreaterThan(0);
      expect(m![3]).toBe(m![2]);
    }
    expect(stdout).not.toMatch(/problem/);
    expect(readdirSync(consumerDir).filter((f) => f.endsWith('.dcm')).length).toBeGreaterThan(10);
  } finally {
    const exited = new Promise<number | null>((r) => fed.once('exit', (code) => r(code)));
    fed.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
  // Nothing of the federation is left running.
  expect(existsSync(endpointsFile)).toBe(true);
}, 120_000);
