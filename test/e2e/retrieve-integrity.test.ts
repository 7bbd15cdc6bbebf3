/**
 * Integrity failures found after a response's root part was committed (a study larger than the
 * lookahead budget): the response is cut short so the requester can never take the package as
 * complete, and a gateway downstream reports the documents it could not deliver.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Action,
  encodeRetrieveImagingDocumentSetRequest,
  type ImagingRequest,
  type RunningGateway,
} from '@xcai/shared';
import { retrieveCall } from '../support/client';
import {
  demoSeeds,
  igDirectoryFor,
  MemoryAuditSink,
  remoteCommunity,
  rgDirectoryFor,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
  studyImagingRequest,
} from '../support/federation';
import { readManifest } from '../../services/reference-community/src/server';
import type { ManifestStudy, SeedManifest } from '../../services/reference-community/src/seed/types';

let seeds: Record<'A' | 'B', string>;
let mB: SeedManifest;
let study: ManifestStudy;
let bad: string;
let refA: CommunityProcess, refB: CommunityProcess;
let rg: RunningGateway, ig: RunningGateway;
const rgAudit = new MemoryAuditSink();
const stops: (() => Promise<void>)[] = [];

function request(): ImagingRequest {
  return studyImagingRequest(mB, study);
}

const instances = () => study.series.flatMap((s) => s.instances);

beforeAll(async () => {
  const all = await demoSeeds();
  seeds = { A: all.A, B: all.B };
  mB = readManifest(seeds.B);
  study = mB.patients[0].studies[0];
  bad = instances()[2].sopInstanceUid;
  [refA, refB] = await Promise.all([
    spawnCommunity([seeds.A]),
    spawnCommunity([seeds.B], { corrupt: [bad] }),
  ]);
  stops.push(refA.stop, refB.stop);
  // A 1-byte budget: the responding gateway commits its root before it has seen any instance.
  rg = await startRG(rgDirectoryFor(refB, [{ homeCommunityId: refA.homeCommunityId, name: 'A' }]), {
    limits: { lookaheadBytes: 1 },
    audit: rgAudit,
  });
  ig = await startIG(igDirectoryFor(refA, [remoteCommunity('B', mB.homeCommunityId, rg.url)]));
  stops.push(rg.close, ig.close);
}, 60_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

it('a bad instance found after the root was committed cuts the response short; what came before is intact', async () => {
  const a = await retrieveCall(
    `${rg.url}/rad75`,
    Action.RAD75,
    encodeRetrieveImagingDocumentSetRequest(request()),
  );
  expect(a.status).toBe(200);
  expect(a.truncated).toBeDefined();
  // The root promised every instance, but the part stream ends before the bad one.
  const order = instances().map((i) => i.sopInstanceUid);
  const received = a.documents.filter((d) => d.bytes.length > 0);
  expect(received.map((d) => d.documentUniqueId)).toEqual(order.slice(0, 2));
  for (const d of received) {
    const file = instances().find((i) => i.sopInstanceUid === d.documentUniqueId)!;
    expect(d.bytes.equals(readFileSync(join(seeds.B, file.path)))).toBe(true);
  }
  await new Promise((r) => setTimeout(r, 100));
  const ev = rgAudit.events.find(
    (e) => e.kind === 'transaction' && e.transaction === 'RAD-75' && e.side === 'responder',
  );
  if (ev?.kind !== 'transaction') throw new Error('no RAD-75 audit record');
  expect(ev.groups.map((g) => g.outcome)).toEqual([0, 8]);
  expect(ev.groups[1].description).toMatch(/SOP Instance UID|not a valid DICOM/);
});

it('through an initiating gateway, the instances before the break arrive and the rest are reported', async () => {
  const a = await retrieveCall(
    `${ig.url}/rad69`,
    Action.RAD69,
    encodeRetrieveImagingDocumentSetRequest(request()),
  );
  expect(a.status).toBe(200);
  expect(a.truncated).toBeUndefined();
  expect(a.registryStatus).toBe('PartialSuccess');
  const order = instances().map((i) => i.sopInstanceUid);
  expect(a.documents.map((d) => d.documentUniqueId)).toEqual(order.slice(0, 2));
  // RAD-69: each at its SOP Instance UID (RAD TF-3 4.69.5), the community named in codeContext
  // (a warning that the answer broke after its first instances, if any, is about the community)
  const perInstance = a.errors.filter((e) => e.severity === 'Error');
  expect(perInstance.map((e) => e.location).sort()).toEqual(order.slice(2).sort());
  expect(a.errors.every((e) => e.codeContext.includes(mB.homeCommunityId))).toBe(true);
});
