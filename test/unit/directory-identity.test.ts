/**
 * The directory's per-community patient identity mode (shared — the default —, xcpd, static) and
 * the top-level patientIdentity settings: what is read, and every bad entry named.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryError, loadDirectory, PATIENT_IDENTITY_DEFAULTS, readDirectory } from '@xcai/shared';

const B = 'urn:oid:1.3.6.1.4.1.21367.13.70.102';
const B_IDS = '1.3.6.1.4.1.21367.13.20.2000';

function dir(community: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    homeCommunityId: 'urn:oid:1.3.6.1.4.1.21367.13.70.101',
    local: { patientDemographicsSupplier: { url: 'http://127.0.0.1:1/pdq', timeoutMs: 2000 } },
    communities: [
      {
        homeCommunityId: B,
        name: 'B',
        endpoints: { iti38: 'https://b.example/iti38', iti55: 'https://b.example/iti55' },
        ...community,
      },
    ],
    ...extra,
  };
}

function problems(raw: unknown): string[] {
  try {
    readDirectory(raw);
  } catch (e) {
    if (e instanceof DirectoryError) return e.problems;
    throw e;
  }
  return [];
}

it('without patientIdentity every community shares our ids, and the cache has its defaults', () => {
  const d = readDirectory(dir({}));
  expect(d.communities[0].patientIdentity).toBeUndefined();
  expect(d.patientIdentity).toEqual(PATIENT_IDENTITY_DEFAULTS);
  expect(readDirectory(dir({ patientIdentity: 'shared' })).communities[0].patientIdentity).toEqual({
    mode: 'shared',
  });
});

it('reads the xcpd mode, the iti55 endpoint, the local supplier and the top-level settings', () => {
  const d = readDirectory(
    dir(
      { patientIdentity: { mode: 'xcpd', assigningAuthority: B_IDS } },
      {
        patientIdentity: {
          assigningAuthority: '1.3.6.1.4.1.21367.13.20.1000',
          cacheTtlMs: 86_400_000,
          noMatchTtlMs: 0,
          maxCachedCorrelations: 500,
        },
      },
    ),
  );
  expect(d.communities[0].patientIdentity).toEqual({ mode: 'xcpd', assigningAuthority: B_IDS });
  expect(d.communities[0].endpoints.iti55?.url).toBe('https://b.example/iti55');
  expect(d.local.patientDemographicsSupplier).toMatchObject({
    url: 'http://127.0.0.1:1/pdq',
    timeoutMs: 2000,
  });
  expect(d.patientIdentity).toEqual({
    assigningAuthority: '1.3.6.1.4.1.21367.13.20.1000',
    cacheTtlMs: 86_400_000,
    noMatchTtlMs: 0,
    maxCachedCorrelations: 500,
  });
});

it('rejects an unknown mode with a message naming the entry and the modes', () => {
  expect(problems(dir({ patientIdentity: 'pix' }))).toEqual([
    'communities[0].patientIdentity: unknown patient identity mode "pix" (shared, xcpd or static)',
  ]);
  expect(problems(dir({ patientIdentity: { mode: 'XCPD', assigningAuthority: B_IDS } }))).toEqual([
    'communities[0].patientIdentity.mode: unknown patient identity mode "XCPD" (shared, xcpd or static)',
  ]);
  expect(problems(dir({ patientIdentity: { assigningAuthority: B_IDS } }))).toEqual([
    'communities[0].patientIdentity.mode: unknown patient identity mode null (shared, xcpd or static)',
  ]);
});

it('names what the xcpd mode needs: the assigning authority, endpoints.iti55, the local supplier', () => {
  const raw = dir({ patientIdentity: 'xcpd', endpoints: { iti38: 'https://b.example/iti38' } });
  delete (raw.local as Record<string, unknown>).patientDemographicsSupplier;
  expect(problems(raw)).toEqual([
    "communities[0].patientIdentity.assigningAuthority: is required in the xcpd mode (the OID of the community's patient ids)",
    'communities[0].patientIdentity: the xcpd mode needs endpoints.iti55 (Cross Gateway Patient Discovery)',
    'communities[0].patientIdentity: the xcpd mode needs local.patientDemographicsSupplier (ITI-47) for the demographics it sends',
  ]);
  expect(
    problems(
      dir({ patientIdentity: { mode: 'xcpd', assigningAuthority: 'B', cacheTtl: 5, correlations: 'x' } }),
    ),
  ).toEqual([
    'communities[0].patientIdentity.cacheTtl: unknown setting',
    'communities[0].patientIdentity.assigningAuthority: "B" is not an OID of at most 64 characters',
    'communities[0].patientIdentity.correlations: is only used in the static mode',
  ]);
  expect(problems(dir({}, { patientIdentity: { noMatchTtlMs: -1, ttl: 1 } }))).toEqual([
    'patientIdentity.ttl: unknown setting',
    'patientIdentity.noMatchTtlMs: must be an integer from 0 to 2592000000',
  ]);
});

it('the static mode reads a correlation file and names bad entries without repeating a patient id', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'correlations-'));
  writeFileSync(
    join(tmp, 'ids-b.yaml'),
    [
      `"JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO": "B-4711^^^&${B_IDS}&ISO"`,
      `"JP1002^^^&1.3.6.1.4.1.21367.13.20.1000&ISO": "B-4712^^^&${B_IDS}&ISO"`,
    ].join('\n'),
  );
  writeFileSync(
    join(tmp, 'bad.yaml'),
    [`"JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO": "B-4711^^^&2.999.9&ISO"`, `"SECRET-ID": 42`].join('\n'),
  );
  const file = (correlations: string) => join(tmp, `${correlations}.json`);
  for (const c of ['ids-b', 'bad']) {
    writeFileSync(
      file(c),
      JSON.stringify(
        dir({ patientIdentity: { mode: 'static', assigningAuthority: B_IDS, correlations: `${c}.yaml` } }),
      ),
    );
  }
  const d = loadDirectory(file('ids-b'));
  expect(d.communities[0].patientIdentity?.correlations).toEqual(
    new Map([
      ['JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO', `B-4711^^^&${B_IDS}&ISO`],
      ['JP1002^^^&1.3.6.1.4.1.21367.13.20.1000&ISO', `B-4712^^^&${B_IDS}&ISO`],
    ]),
  );
  let message = '';
  try {
    loadDirectory(file('bad'));
  } catch (e) {
    message = (e as Error).message;
  }
  expect(message).toContain(`entry 1: the community's id is not of assigning authority ${B_IDS}`);
  expect(message).toContain('entry 2: not a pair of CX patient ids');
  expect(message).not.toMatch(/JP1001|B-4711|SECRET-ID/);
  expect(problems(dir({ patientIdentity: { mode: 'static', assigningAuthority: B_IDS } }))).toEqual([
    'communities[0].patientIdentity.correlations: is required',
  ]);
});
