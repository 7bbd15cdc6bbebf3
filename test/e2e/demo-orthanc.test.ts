/**
 * `npm run demo -- --orthanc`: the demo federation with a fourth community whose images live in a real
 * Orthanc behind the imaging-source bridge. The demo consumer in community A finds that community's
 * manifests (published by the bridge) and retrieves its instances byte-identical, next to A, B and C.
 * (`npm start` without the switch stays self-contained: test/e2e/demo.test.ts.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { ROOT } from '../support/federation';
import { runScript, startDemo } from '../support/demo';
import { orthancAvailable } from '../support/orthanc';

it('with --orthanc, community D is served from Orthanc through the bridge, byte-identical', async () => {
  if (!orthancAvailable())
    throw new Error(
      'Orthanc with its DICOMweb plugin (apt: orthanc orthanc-dicomweb) and unshare are required',
    );
  const dir = mkdtempSync(join(tmpdir(), 'xcai-demo-orthanc-'));
  const demo = await startDemo(dir, {}, ['--orthanc']);
  try {
    const { endpoints } = demo;
    const d = endpoints.communities.find((c) => c.label === 'D');
    expect(d).toBeDefined();
    expect(endpoints.orthanc?.studies).toBe(2);
    expect(d!.imagingDocumentSource).toBe(endpoints.orthanc?.bridge);
    // The archive answers only with the run's credentials.
    const anonymous = await request(`${endpoints.orthanc!.archive}/studies`);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    const patient = endpoints.patients.find(
      (p) => p.communities.includes('D') && p.communities.includes('A'),
    );
    expect(patient).toBeDefined();
    const consumer = await runScript(
      join(ROOT, 'services/reference-community/dist/demo/consumer.js'),
      ['--patient', patient!.id, '--out', join(dir, 'consumer')],
      demo.env,
    );
    expect(consumer.code).toBe(0);
    const m = /D: (\d+) KOS, (\d+) instance\(s\), [\d.]+ MiB, (\d+) byte-identical/.exec(consumer.out);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(1);
    expect(Number(m![2])).toBeGreaterThan(0);
    expect(m![3]).toBe(m![2]);
    expect(consumer.out).not.toMatch(/problem/);
  } finally {
    expect(await demo.stop()).toBe(0);
  }
}, 180_000);
