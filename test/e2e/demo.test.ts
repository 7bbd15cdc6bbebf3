/**
 * The README's first command: `npm start` (the federation) and `npm run demo:consumer`, run as a
 * user would, as separate processes over mutual TLS. Needs the build (npm test builds first).
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/federation';
import { runScript, startDemo } from '../support/demo';

it('npm start runs the federation; the demo consumer fetches every study byte-identical; SIGTERM stops it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xcai-demo-'));
  const demo = await startDemo(dir);
  try {
    const { endpoints } = demo;
    expect(endpoints.consumer.rad69).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/rad69$/);
    expect(endpoints.communities).toHaveLength(3);
    const patient = endpoints.patients.find((p) => p.communities.length === 3);
    expect(patient).toBeDefined();
    expect(demo.output()).toContain(patient!.id);

    const consumerDir = join(dir, 'consumer');
    const consumer = await runScript(
      join(ROOT, 'services/reference-community/dist/demo/consumer.js'),
      ['--patient', patient!.id, '--out', consumerDir],
      demo.env,
    );
    expect(consumer.code).toBe(0);
    for (const label of ['A', 'B', 'C']) {
      const m = new RegExp(
        `${label}: (\\d+) KOS, (\\d+) instance\\(s\\), [\\d.]+ MiB, (\\d+) byte-identical`,
      ).exec(consumer.out);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
      expect(Number(m![2])).toBeGreaterThan(0);
      expect(m![3]).toBe(m![2]);
    }
    expect(consumer.out).not.toMatch(/problem/);
    expect(readdirSync(consumerDir).filter((f) => f.endsWith('.dcm')).length).toBeGreaterThan(10);

    // The patient who opted out in B (BPPC document in B's registry): B answers as if it did not
    // know them, C still shares.
    const optedOut = 'JP1002^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
    expect(demo.output()).toMatch(
      /JP1002\S*\s+in B: No sharing through the regional network → community B answers as if/,
    );
    const other = await runScript(
      join(ROOT, 'services/reference-community/dist/demo/consumer.js'),
      ['--patient', optedOut, '--out', join(dir, 'consumer-2')],
      demo.env,
    );
    expect(other.code).toBe(0);
    expect(other.out).toMatch(/B: 0 KOS, 0 instance\(s\)/);
    expect(other.out).toMatch(/C: [1-9]\d* KOS, [1-9]\d* instance\(s\)/);
  } finally {
    expect(await demo.stop()).toBe(0);
  }
}, 120_000);
