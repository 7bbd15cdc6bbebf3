/**
 * A national-scale directory (500 communities, issue 16) loads and validates as YAML and as JSON,
 * with every entry's endpoints, defaults and identity read, and a bad entry among 500 is named.
 * (Its load time is a figure of test/bench/national-fanout.bench.ts, not asserted here.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DirectoryError, loadDirectory } from '@xcai/shared';
import { validateDirectoryFile } from '@xcai/shared/src/cli/validate';
import {
  nationalDirectory,
  nationalDirectoryYaml,
  nationalHome,
  nationalName,
  type NationalDirectoryOptions,
} from '../support/national-directory';

const N = 500;
let tmp: string;
let opts: NationalDirectoryOptions;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'xcai-national-dir-'));
  const ca = join(tmp, 'ca.crt');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
  opts = {
    communities: N,
    base: (i) => `https://${nationalName(i)}:8443/xca`,
    trustAnchors: [ca],
    timeoutMs: 4000,
  };
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = join(tmp, name);
  writeFileSync(f, text);
  return f;
}

describe('a directory of 500 communities', () => {
  it.each([
    ['YAML', () => write('national.yaml', nationalDirectoryYaml(opts))],
    ['JSON', () => write('national.json', JSON.stringify(nationalDirectory(opts), null, 2))],
  ])('loads every entry from %s', (_kind, file) => {
    const d = loadDirectory(file());
    expect(d.communities).toHaveLength(N);
    for (const i of [0, 1, 249, 250, 498, 499]) {
      const c = d.communities[i];
      expect(c.homeCommunityId).toBe(nationalHome(i));
      expect(c.name).toBe(`Community ${i + 1}`);
      expect(c.endpoints.iti38).toEqual({
        url: `https://${nationalName(i)}:8443/xca/iti38`,
        timeoutMs: 4000,
        maxConcurrent: 16,
        maxResponseBytes: expect.any(Number),
      });
      expect(c.endpoints.rad75?.url).toBe(`https://${nationalName(i)}:8443/xca/rad75`);
      expect(c.identity).toEqual({ trustAnchors: opts.trustAnchors, names: [nationalName(i)] });
      expect(c.async).toBe(false);
    }
    expect(new Set(d.communities.map((c) => c.homeCommunityId)).size).toBe(N);
  });

  it('validates as `xcai validate` does, with a summary of 500 communities', () => {
    const r = validateDirectoryFile(write('validate.yaml', nationalDirectoryYaml(opts)));
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.summary?.communities).toBe(N);
  });

  it.each(['yaml', 'json'])('names a duplicate and a bad URL deep in the list (%s)', (kind) => {
    const raw = nationalDirectory(opts) as { communities: Record<string, unknown>[] };
    raw.communities[437].homeCommunityId = nationalHome(12);
    (raw.communities[481].endpoints as Record<string, unknown>).iti38 = { url: 'ftp://gw.example/iti38' };
    const file = write(
      `bad.${kind}`,
      kind === 'json' ? JSON.stringify(raw) : stringify(raw, { aliasDuplicateObjects: false }),
    );
    let err: unknown;
    try {
      loadDirectory(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DirectoryError);
    const problems = (err as DirectoryError).problems;
    expect(problems).toContainEqual(
      expect.stringMatching(/^communities\[437\]\.homeCommunityId: duplicate /),
    );
    expect(problems).toContainEqual(expect.stringMatching(/^communities\[481\]\.endpoints\.iti38\.url: /));
    expect(problems).toHaveLength(2);
  });

  it('refuses a JSON directory with a key twice in one object, as the YAML reader does', () => {
    const home = nationalHome(1000);
    const file = write(
      'dup.json',
      `{"homeCommunityId": "${home}", "communities": [{"homeCommunityId": "${nationalHome(1)}", "name": "B", "name": "C"}]}`,
    );
    expect(() => loadDirectory(file)).toThrow(/"name" appears twice/);
    // equal keys in different objects, and keys inside strings, are fine
    const ok = write(
      'ok.json',
      `{"homeCommunityId": "${home}", "communities": [{"homeCommunityId": "${nationalHome(1)}", "name": "a \\"name\\": x"}, {"homeCommunityId": "${nationalHome(2)}", "name": "C"}]}`,
    );
    expect(loadDirectory(ok).communities.map((c) => c.name)).toEqual(['a "name": x', 'C']);
  });

  it('reads a YAML flow mapping that is not strict JSON as YAML', () => {
    const file = write(
      'flow.yaml',
      `{ homeCommunityId: "${nationalHome(1000)}", communities: [{ homeCommunityId: "${nationalHome(1)}", name: B }] }\n`,
    );
    const d = loadDirectory(file);
    expect(d.homeCommunityId).toBe(nationalHome(1000));
    expect(d.communities.map((c) => c.name)).toEqual(['B']);
  });
});
