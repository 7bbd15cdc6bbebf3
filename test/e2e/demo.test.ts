/**
 * The README's first command: `npm start` (the federation) and `npm run demo:consumer`, run as a
 * user would, as separate processes over mutual TLS. Needs the build (npm test builds first).
 * Every community has its own patient ids (B and C in the xcpd mode of A's directory): the consumer
 * knows only A's id and gets every community's studies.
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
    // The table shows each community's own id for the person, under its own assigning authority.
    const ids = Object.values(patient!.ids);
    expect(new Set(ids.map((id) => id.split('&')[1])).size).toBe(3);
    for (const id of ids) expect(demo.output()).toContain(id);
    expect(patient!.id).toBe(patient!.ids.A);

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

    // A patient C does not know: C gives no error and nothing; B's studies still arrive.
    const unknownInC = endpoints.patients.find((p) => !p.ids.C && p.communities.includes('B'));
    expect(unknownInC).toBeDefined();
    const second = await runScript(
      join(ROOT, 'services/reference-community/dist/demo/consumer.js'),
      ['--patient', unknownInC!.id, '--out', join(dir, 'consumer-2')],
      demo.env,
    );
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/B: [1-9]\d* KOS, [1-9]\d* instance\(s\)/);
    expect(second.out).toMatch(/C: 0 KOS, 0 instance\(s\)/);
    expect(second.out).not.toMatch(/error|warning|problem/);

    // The patient who opted out in B (a BPPC document in B's registry, under B's own id): B answers
    // A's patient discovery and queries as if it did not know them — no error, nothing — C still shares.
    const consent = endpoints.consent?.find((c) => c.community === 'B' && c.optedOut);
    expect(consent).toBeDefined();
    expect(demo.output()).toContain(
      `${consent!.patientId}  in B: No sharing through the regional network → community B answers as if`,
    );
    const optedOut = endpoints.patients.find((p) => p.ids.B === consent!.patientId);
    expect(optedOut?.communities).toEqual(['B', 'C']);
    const third = await runScript(
      join(ROOT, 'services/reference-community/dist/demo/consumer.js'),
      ['--patient', optedOut!.id, '--out', join(dir, 'consumer-3')],
      demo.env,
    );
    expect(third.code).toBe(0);
    expect(third.out).toMatch(/B: 0 KOS, 0 instance\(s\)/);
    expect(third.out).toMatch(/C: [1-9]\d* KOS, [1-9]\d* instance\(s\)/);
    expect(third.out).not.toMatch(/error|warning|problem/);
  } finally {
    expect(await demo.stop()).toBe(0);
  }
}, 120_000);
