/**
 * XCPD end to end (issue 14): the demo communities A, B, C with their own patient ids, each a
 * reference community (registry, repository, IDS, MPI) in its own process; responding gateways B
 * and C serve ITI-55 against their MPI; the initiating gateway of A has B and C in `xcpd` mode and
 * caches correlations in the real Redis. Every HL7 V3 message on the wire passes a recording tap
 * and is schema-checked; every ITI-55 / ITI-47 audit record is checked against DICOM's schema.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAuditMessages } from '@xcai/shared/src/audit/messages';
import {
  loadDirectory,
  type AuditEvent,
  type RunningGateway,
  type TransactionAuditEvent,
} from '@xcai/shared';
import {
  directory,
  MemoryAuditSink,
  spawnCommunity,
  startIG,
  startRG,
  testSettings,
  xcpdSeeds,
  type CommunityProcess,
} from '../support/federation';
import { AUDIT_SCHEMA, HL7V3_SCHEMA } from '../support/fixtures';
import { deleteUnder, inspector, REDIS_URL, uniquePrefix } from '../support/redis';
import { findDocuments, subrequests, tap, type Tap } from '../support/xcpd';
import { xsdErrors } from '../support/xsd';
import {
  XCPD_DEMO_AUTHORITIES,
  xcpdDemoPatientIds,
} from '../../services/reference-community/src/seed/generate';

const IDS = [...xcpdDemoPatientIds().values()];
const YAMADA = IDS[0] as Record<'A' | 'B' | 'C', string>;
const TANAKA = IDS[2] as Record<'A' | 'B', string>;

const prefix = uniquePrefix('xcpd');
const refs = {} as Record<'A' | 'B' | 'C', CommunityProcess>;
const rgAudit = { B: new MemoryAuditSink(), C: new MemoryAuditSink() };
const rgs = {} as Record<'B' | 'C', RunningGateway>;
const taps: Tap[] = [];
const igAudit = new MemoryAuditSink();
let ig: RunningGateway;
let ig2: RunningGateway;
const ig2Audit = new MemoryAuditSink();

const transactions = (sink: MemoryAuditSink, tx: string, side?: string) =>
  sink.events.filter(
    (e): e is TransactionAuditEvent =>
      e.kind === 'transaction' && e.transaction === tx && (!side || e.side === side),
  );

function igDirectory() {
  const a = refs.A;
  return directory({
    homeCommunityId: a.homeCommunityId,
    name: 'A',
    deadlineMs: 10_000,
    local: {
      registry: { url: a.registry },
      patientDemographicsSupplier: { url: taps[0].url, timeoutMs: 3_000 },
    },
    patientIdentity: { assigningAuthority: XCPD_DEMO_AUTHORITIES.A },
    communities: (['B', 'C'] as const).map((k, i) => ({
      homeCommunityId: refs[k].homeCommunityId,
      name: `Community ${k}`,
      endpoints: { iti38: `${rgs[k].url}/iti38`, iti55: taps[1 + i].url },
      patientIdentity: { mode: 'xcpd', assigningAuthority: XCPD_DEMO_AUTHORITIES[k] },
    })),
  });
}

async function startInitiating(audit: MemoryAuditSink): Promise<RunningGateway> {
  return startIG(igDirectory(), {
    audit,
    settings: {
      ...testSettings,
      redis: REDIS_URL,
      redisKeyPrefix: prefix,
      handoverSecret: 'replicas-share-it',
    },
  });
}

beforeAll(async () => {
  const seeds = await xcpdSeeds();
  await Promise.all(
    (['A', 'B', 'C'] as const).map(async (k) => (refs[k] = await spawnCommunity([seeds[k]]))),
  );
  const pdq = { A: await tap(refs.A.pdq), B: await tap(refs.B.pdq), C: await tap(refs.C.pdq) };
  for (const k of ['B', 'C'] as const) {
    rgs[k] = await startRG(
      directory({
        homeCommunityId: refs[k].homeCommunityId,
        name: k,
        local: { registry: { url: refs[k].registry }, patientDemographicsSupplier: { url: pdq[k].url } },
        patientIdentity: { assigningAuthority: XCPD_DEMO_AUTHORITIES[k] },
        communities: [{ homeCommunityId: refs.A.homeCommunityId, name: 'A' }],
      }),
      { audit: rgAudit[k] },
    );
  }
  // taps: A's MPI, ITI-55 of B and C, the MPIs of B and C.
  taps.push(pdq.A, await tap(`${rgs.B.url}/iti55`), await tap(`${rgs.C.url}/iti55`), pdq.B, pdq.C);
  ig = await startInitiating(igAudit);
}, 120_000);

afterAll(async () => {
  await ig?.close();
  await ig2?.close();
  for (const k of ['B', 'C'] as const) await rgs[k]?.close();
  for (const t of taps) await t.close();
  await Promise.all(Object.values(refs).map((r) => r.stop()));
  const r = inspector();
  await deleteUnder(r, prefix);
  r.disconnect();
});

const HOME = (k: 'A' | 'B' | 'C') => refs[k].homeCommunityId;
const metrics = async (g: RunningGateway) => (await g.observability.metrics.render()).body;

it("a consumer with only A's id gets B's and C's documents, each community asked with its own id", async () => {
  const found = await findDocuments(`${ig.url}/iti18`, YAMADA.A);
  expect(found.status).toBe('Success');
  expect(found.errors).toEqual([]);
  expect([...new Set(found.homes)].sort()).toEqual([HOME('A'), HOME('B'), HOME('C')].sort());
  // Each community's documents name the patient by that community's id.
  for (const k of ['A', 'B', 'C'] as const) {
    const mine = found.patients.filter((_, i) => found.homes[i] === HOME(k));
    expect(new Set(mine)).toEqual(new Set([YAMADA[k]]));
  }
  // The responding gateways were asked ITI-38 with their own ids (their served records).
  expect(transactions(rgAudit.B, 'ITI-38', 'responder').map((e) => e.patientIds)).toEqual([[YAMADA.B]]);
  expect(transactions(rgAudit.C, 'ITI-38', 'responder').map((e) => e.patientIds)).toEqual([[YAMADA.C]]);

  // A's audit: ITI-47 to its MPI, ITI-55 naming both ids (R38), ITI-38 with the community's id.
  expect(transactions(igAudit, 'ITI-47').map((e) => e.patientIds)).toEqual([[YAMADA.A]]);
  const discovered = transactions(igAudit, 'ITI-55').map((e) => [e.query?.homeCommunityId, e.patientIds]);
  expect(discovered.sort()).toEqual(
    [
      [HOME('B'), [YAMADA.A, YAMADA.B]],
      [HOME('C'), [YAMADA.A, YAMADA.C]],
    ].sort(),
  );
  expect(
    transactions(igAudit, 'ITI-38', 'requester')
      .map((e) => [e.query?.homeCommunityId, e.patientIds])
      .sort(),
  ).toEqual(
    [
      [HOME('B'), [YAMADA.B]],
      [HOME('C'), [YAMADA.C]],
    ].sort(),
  );
  expect(transactions(igAudit, 'ITI-18', 'responder').map((e) => e.patientIds)).toEqual([[YAMADA.A]]);
  // Both ends of ITI-55 at the responding gateways, and their own ITI-47.
  for (const k of ['B', 'C'] as const) {
    expect(transactions(rgAudit[k], 'ITI-55', 'responder')[0].patientIds).toEqual([YAMADA.A, YAMADA[k]]);
    expect(transactions(rgAudit[k], 'ITI-47', 'requester')[0].patientIds).toEqual([YAMADA[k]]);
  }

  // Every HL7 V3 message that crossed the wire, both directions, at every hop.
  const onWire = taps.flatMap((t) => t.exchanges.flatMap((x) => [x.request, x.response]));
  expect(onWire).toHaveLength(2 * 5);
  expect(xsdErrors(onWire, HL7V3_SCHEMA)).toBe('');
  // The answer of B echoes the query and names B as custodian.
  expect(taps[1].exchanges[0].response).toContain('<queryByParameter');
  expect(taps[1].exchanges[0].response).toContain(
    `<id root="${HOME('B').slice(8)}"/><code code="NotHealthDataLocator"`,
  );

  const records = [igAudit, rgAudit.B, rgAudit.C]
    .flatMap((s) => s.events)
    .filter(
      (e: AuditEvent) =>
        e.kind === 'transaction' && (e.transaction === 'ITI-55' || e.transaction === 'ITI-47'),
    )
    .flatMap((e) => buildAuditMessages(e, { auditSourceId: 'test' }));
  expect(records).toHaveLength(7);
  expect(xsdErrors(records, AUDIT_SCHEMA)).toBe('');
  for (const r of records) expect(r).toContain('csd-code="110112"'); // DICOM "Query"
}, 60_000);

it('a second identical query hits the cache: no ITI-47, no ITI-55 on the wire, the same answer', async () => {
  const before = {
    m: await metrics(ig),
    wire: taps.map((t) => t.exchanges.length),
    audit: igAudit.events.length,
  };
  const first = await findDocuments(`${ig.url}/iti18`, YAMADA.A);
  const again = await findDocuments(`${ig.url}/iti18`, YAMADA.A);
  expect(again).toEqual(first);
  expect(first.homes.filter((h) => h !== HOME('A')).length).toBeGreaterThan(0);
  const after = await metrics(ig);
  expect(subrequests(after, 'ITI-55')).toBe(subrequests(before.m, 'ITI-55'));
  expect(subrequests(after, 'ITI-47')).toBe(subrequests(before.m, 'ITI-47'));
  expect(subrequests(after, 'ITI-38')).toBe(subrequests(before.m, 'ITI-38') + 4);
  expect(taps.map((t) => t.exchanges.length)).toEqual(before.wire);
  const newRecords = igAudit.events.slice(before.audit) as TransactionAuditEvent[];
  expect(newRecords.filter((e) => e.transaction === 'ITI-55' || e.transaction === 'ITI-47')).toEqual([]);
});

it('another replica sharing the Redis cache answers the same, without discovering again', async () => {
  ig2 = await startInitiating(ig2Audit);
  const mine = await findDocuments(`${ig.url}/iti18`, YAMADA.A);
  const theirs = await findDocuments(`${ig2.url}/iti18`, YAMADA.A);
  expect(theirs).toEqual(mine);
  expect(subrequests(await metrics(ig2), 'ITI-55')).toBe(0);
  expect(subrequests(await metrics(ig2), 'ITI-47')).toBe(0);
});

it('a patient unknown in C: no error and no documents from C, and C is not asked again', async () => {
  const cBefore = transactions(rgAudit.C, 'ITI-55').length;
  const found = await findDocuments(`${ig.url}/iti18`, TANAKA.A);
  expect(found.status).toBe('Success');
  expect(found.errors).toEqual([]);
  expect(new Set(found.homes)).toEqual(new Set([HOME('B')]));
  expect(new Set(found.patients)).toEqual(new Set([TANAKA.B]));
  // C answered "no match" to ITI-55 and received no ITI-38 for the patient.
  const asked = transactions(rgAudit.C, 'ITI-55', 'responder');
  expect(asked).toHaveLength(cBefore + 1);
  expect(asked[asked.length - 1].patientIds).toEqual([TANAKA.A]);
  expect(transactions(rgAudit.C, 'ITI-38').some((e) => e.patientIds.includes(TANAKA.A))).toBe(false);
  // "Not known there" is cached too (noMatchTtlMs).
  await findDocuments(`${ig.url}/iti18`, TANAKA.A);
  expect(transactions(rgAudit.C, 'ITI-55')).toHaveLength(cBefore + 1);
});

it("a consumer that already sends B's id is not second-guessed for B", async () => {
  const b55 = subrequests(await metrics(ig), 'ITI-55', HOME('B'));
  const found = await findDocuments(`${ig.url}/iti18`, YAMADA.B);
  expect(new Set(found.homes)).toEqual(new Set([HOME('B')]));
  expect(subrequests(await metrics(ig), 'ITI-55', HOME('B'))).toBe(b55);
  // C could only be found through our own MPI, which does not know B's ids: said, not guessed.
  expect(found.errors).toContainEqual(
    expect.objectContaining({
      errorCode: 'XDSUnknownPatientId',
      severity: 'Warning',
      location: HOME('C'),
      codeContext: expect.stringContaining('our Patient Demographics Supplier has no record'),
    }),
  );
  // (Our own registry, asked with B's id as the consumer sent it, answers by its own policy: its
  // errors are located at our own home, as the Initiating Gateway locates its registry's errors.)
  expect(found.errors.filter((e) => e.location === HOME('C') || e.location === HOME('A'))).toHaveLength(
    found.errors.length,
  );
});

it("a consumer asking with A's local MRN: A's MPI gives our community id, which is what ITI-55 sends", async () => {
  const mrn = 'M1001^^^&1.3.6.1.4.1.21367.13.70.101.6&ISO';
  const found = await findDocuments(`${ig.url}/iti18`, mrn);
  expect(new Set(found.homes)).toEqual(new Set([HOME('B'), HOME('C')]));
  const last = transactions(rgAudit.B, 'ITI-55', 'responder').at(-1);
  expect(last?.patientIds).toEqual([YAMADA.A, YAMADA.B]);
  const sent = transactions(igAudit, 'ITI-55', 'requester').at(-1);
  expect(sent?.patientIds).toEqual([mrn, YAMADA.A, expect.stringMatching(/^(B-4711|C-20031)\^/)]);
  // Only our registry (asked with the MRN as sent) may complain; B and C answered.
  expect(found.errors.every((e) => e.location === HOME('A'))).toBe(true);
});

it('the static mode: ids from the correlation file, no discovery; a patient not in it is not asked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xcpd-static-'));
  writeFileSync(join(dir, 'ids-c.yaml'), `"${YAMADA.A}": "${YAMADA.C}"\n`);
  writeFileSync(
    join(dir, 'directory.json'),
    JSON.stringify({
      homeCommunityId: refs.A.homeCommunityId,
      local: { registry: { url: refs.A.registry } },
      communities: [
        {
          homeCommunityId: HOME('C'),
          name: 'Community C',
          endpoints: { iti38: `${rgs.C.url}/iti38` },
          patientIdentity: {
            mode: 'static',
            assigningAuthority: XCPD_DEMO_AUTHORITIES.C,
            correlations: 'ids-c.yaml',
          },
        },
      ],
    }),
  );
  const audit = new MemoryAuditSink();
  const g = await startIG(loadDirectory(join(dir, 'directory.json')), { audit });
  try {
    const c55 = transactions(rgAudit.C, 'ITI-55').length;
    const found = await findDocuments(`${g.url}/iti18`, YAMADA.A);
    expect(new Set(found.homes)).toEqual(new Set([HOME('A'), HOME('C')]));
    expect(transactions(rgAudit.C, 'ITI-38', 'responder').at(-1)?.patientIds).toEqual([YAMADA.C]);
    const sato = await findDocuments(`${g.url}/iti18`, IDS[1].A as string);
    expect(sato.errors).toEqual([]);
    expect(sato.homes.filter((h) => h === HOME('C'))).toEqual([]);
    expect(transactions(rgAudit.C, 'ITI-55')).toHaveLength(c55);
    expect(transactions(audit, 'ITI-47')).toEqual([]);
  } finally {
    await g.close();
  }
});
