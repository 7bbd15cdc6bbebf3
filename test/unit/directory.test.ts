import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryError, isHomeCommunityId, loadDirectory, parseSize, readDirectory } from '@xcai/shared';

const good = {
  homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.101',
  name: 'A',
  local: {
    registry: { url: 'http://127.0.0.1:1/registry' },
    repositories: [{ repositoryUniqueId: '1.2.3', url: 'http://127.0.0.1:1/repository' }],
    imagingDocumentSources: [
      { repositoryUniqueId: '1.2.4', url: 'http://127.0.0.1:1/ids', maxResponseBytes: '2GiB' },
    ],
  },
  communities: [
    {
      homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.102',
      name: 'B',
      endpoints: {
        iti38: { url: 'https://b.example/iti38', timeoutMs: 5000 },
        iti39: 'https://b.example/iti39',
      },
      maxDocumentsPerRequest: 10,
    },
  ],
};

function problems(raw: unknown): string[] {
  try {
    readDirectory(raw);
  } catch (e) {
    if (e instanceof DirectoryError) return e.problems;
    throw e;
  }
  return [];
}

describe('community directory', () => {
  it('reads a good directory with defaults', () => {
    const d = readDirectory(good);
    expect(d.deadlineMs).toBe(30_000);
    expect(d.communities[0].endpoints.iti38).toMatchObject({
      url: 'https://b.example/iti38',
      timeoutMs: 5000,
      maxConcurrent: 16,
    });
    expect(d.communities[0].endpoints.iti39?.url).toBe('https://b.example/iti39');
    expect(d.communities[0].endpoints.rad75).toBeUndefined();
    expect(d.local.imagingDocumentSources[0].maxResponseBytes).toBe(2 * 1024 ** 3);
    expect(d.policy.unknownPatient).toBe('empty-success');
  });

  it('names every bad entry', () => {
    const bad = structuredClone(good) as Record<string, unknown> & typeof good;
    bad.homeCommunityId = '1.2.3';
    (bad.communities[0] as Record<string, unknown>).homeCommunityId = 'urn:oid:1.3.6.1.4.1.21367.13.70.101';
    bad.communities[0].endpoints.iti38.url = 'ftp://b.example';
    (bad.local.repositories as unknown[]).push({ repositoryUniqueId: '1.2.3', url: 'http://x' });
    (bad as Record<string, unknown>).extra = 1;
    const p = problems(bad);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^homeCommunityId: "1.2.3" is not a homeCommunityId/),
        expect.stringMatching(/^communities\[0\].endpoints.iti38.url: .* is not an http\(s\) URL/),
        expect.stringMatching(/^local.repositories\[1\].repositoryUniqueId: duplicate 1.2.3/),
        expect.stringMatching(/^extra: unknown setting/),
      ]),
    );
  });

  it('refuses our own home listed as a remote community, duplicates and bad sizes', () => {
    const d = structuredClone(good);
    d.communities.push({ ...d.communities[0] });
    (d.communities[0] as Record<string, unknown>).homeCommunityId = good.homeCommunityId;
    (d.local.imagingDocumentSources[0] as Record<string, unknown>).maxResponseBytes = 'lots';
    const p = problems(d);
    expect(p.some((x) => x.includes('is our own homeCommunityId'))).toBe(true);
    expect(p.some((x) => x.includes('maxResponseBytes'))).toBe(true);
  });

  it('loads YAML and reports unreadable files and syntax errors by file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dir-'));
    const f = join(dir, 'directory.yaml');
    writeFileSync(
      f,
      `homeCommunityId: ${good.homeCommunityId}\ncommunities:\n  - homeCommunityId: urn:oid:1.2.9\n    name: B\n`,
    );
    expect(loadDirectory(f).communities[0].name).toBe('B');
    writeFileSync(f, 'homeCommunityId: [unclosed');
    expect(() => loadDirectory(f)).toThrow(new RegExp(`${f}.*not valid YAML`, 's'));
    expect(() => loadDirectory(join(dir, 'missing.yaml'))).toThrow(/cannot read the file/);
  });

  it('checks homeCommunityId and sizes', () => {
    expect(isHomeCommunityId('urn:oid:1.2.840.10008')).toBe(true);
    expect(isHomeCommunityId('urn:oid:1.02.3')).toBe(false);
    expect(isHomeCommunityId(`urn:oid:1.${'2'.repeat(70)}`)).toBe(false);
    expect(parseSize('512KiB')).toBe(524288);
    expect(parseSize('4 GB')).toBe(4e9);
    expect(parseSize('x')).toBeUndefined();
  });
});
