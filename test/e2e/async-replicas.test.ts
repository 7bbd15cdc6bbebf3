/**
 * Two initiating-gateway PROCESSES sharing Redis: the async ITI-38 response for a request held by
 * one replica lands on the other, which hands it over (streamed, HMAC-authenticated) to the owner.
 * Needs `npx tsc -b tsconfig.build.json` (the gateways run from dist/).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Action,
  cidFromHref,
  contentIdKey,
  decodeAdhocQueryResponse,
  decodeRetrieveDocumentSetResponse,
  encodeEnvelope,
  encodeRetrieveImagingDocumentSetRequest,
  MtomWriter,
  newMessageId,
  type RunningGateway,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import type Redis from 'ioredis';
import { soapCall } from '../support/client';
import {
  demoSeeds,
  rgDirectoryFor,
  spawnCommunity,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { readMessage, startReplyReceiver, type ReplyReceiver } from '../support/async-peer';
import { spawnIgReplica, type IgReplica } from '../support/ig-replica';
import { deleteUnder, inspector, keysUnder, REDIS_URL, uniquePrefix } from '../support/redis';
import { readManifest } from '../../services/reference-community/src/server';
import type { ManifestStudy, SeedManifest } from '../../services/reference-community/src/seed/types';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const SECRET = 'replica-test-secret-0123456789abcdef';
const prefix = uniquePrefix('async-replicas');

let work: string;
let homeA: string, homeB: string;
let seeds: Record<'A' | 'B' | 'C', string>;
let manifestB: SeedManifest;
let refB: CommunityProcess;
let rgB: RunningGateway;
let receiver: ReplyReceiver;
let redis: Redis;
let ig1: IgReplica, ig2: IgReplica;
const stop: (() => Promise<void>)[] = [];

function findDocuments() {
  return encodeFindDocumentsRequest(PATIENT_1);
}

async function spawnIG(name: string, env: Record<string, string>, timeoutMs = 8000): Promise<IgReplica> {
  const p = await spawnIgReplica({
    dir: work,
    name,
    directory: {
      homeCommunityId: homeA,
      name: `A (${name})`,
      deadlineMs: 10_000,
      communities: [
        {
          homeCommunityId: homeB,
          name: 'B',
          async: true,
          endpoints: {
            iti38: { url: `${rgB.url}/iti38`, timeoutMs },
            rad75: { url: `${rgB.url}/rad75`, timeoutMs },
          },
        },
      ],
      consumers: [{ name: 'PACS', replyTo: ['http://127.0.0.1:*'] }],
    },
    env: { REDIS_URL, XCAI_REDIS_PREFIX: prefix, ...env },
    keep: /./,
  });
  stop.push(p.stop);
  return p;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'xcai-replicas-'));
  seeds = await demoSeeds();
  homeA = readManifest(seeds.A).homeCommunityId;
  manifestB = readManifest(seeds.B);
  homeB = manifestB.homeCommunityId;
  refB = await spawnCommunity([seeds.B]);
  stop.push(refB.stop);
  rgB = await startRG(
    rgDirectoryFor(refB, [
      { homeCommunityId: homeA, name: 'A', replyTo: ['http://127.0.0.1:*/async-response'] } as never,
    ]),
    { async: { deliveryWindowMs: 2_000 } },
  );
  stop.push(rgB.close);
  receiver = await startReplyReceiver();
  stop.push(receiver.close);
  redis = inspector();
  stop.push(async () => {
    await deleteUnder(redis, prefix);
    redis.disconnect();
  });
  ig2 = await spawnIG('ig2', { XCAI_HANDOVER_SECRET: SECRET });
  // Replica 1 announces replica 2's address as its public one: every async answer lands on replica 2.
  ig1 = await spawnIG('ig1', { XCAI_HANDOVER_SECRET: SECRET, XCAI_PUBLIC_URL: ig2.url });
}, 90_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s();
  rmSync(work, { recursive: true, force: true });
});

/** Polls `check` until it holds or `ms` pass (a bound, not a timing assertion). */
async function eventually(check: () => boolean, ms = 5_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

describe('async responses across initiating-gateway replicas', () => {
  it('completes a request held by replica 1 with the response that landed on replica 2', async () => {
    const a = await soapCall(`${ig1.url}/iti18`, Action.ITI18, findDocuments());
    expect(a.status).toBe(200);
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.status).toBe('Success');
    expect(res.objects.length).toBeGreaterThan(0);
    expect(res.objects.every((o) => o.attr('home') === homeB)).toBe(true);
    // Replica 2 logs the hand-over when replica 1 acknowledges it, which may be just after replica 1 answered us.
    expect(
      await eventually(() =>
        ig2.logs.some((l) => l.msg === 'async response handed over to the waiting replica'),
      ),
    ).toBe(true);
    expect(ig2.logs.some((l) => /cannot be handed over|hand-over failed/.test(String(l.msg)))).toBe(false);
    const keys = [...(await keysUnder(redis, prefix)).keys()];
    expect(keys.filter((k) => k.includes(':replica:'))).toHaveLength(2);
  });

  it('does the same for an ITI-18 served asynchronously by replica 1', async () => {
    const replyTo = `${receiver.url}/reply`;
    const a = await soapCall(`${ig1.url}/iti18`, Action.ITI18, findDocuments(), { replyTo });
    expect(a.status).toBe(202);
    const m = await receiver.next(a.messageId);
    const res = decodeAdhocQueryResponse(m.envelope.doc, m.envelope.payload);
    expect([m.envelope.wsa.action, res.status]).toEqual([Action.ITI18Response, 'Success']);
    expect(res.objects.every((o) => o.attr('home') === homeB)).toBe(true);
  });

  it('streams an MTOM RAD-75 response across the hand-over, byte-exact', async () => {
    const s = manifestB.patients.find((p) => p.id === PATIENT_1)?.studies[0] as ManifestStudy;
    const req = encodeRetrieveImagingDocumentSetRequest({
      studies: [
        {
          studyInstanceUid: s.studyInstanceUid,
          series: s.series.map((r) => ({
            seriesInstanceUid: r.seriesInstanceUid,
            documents: r.instances.map((i) => ({
              homeCommunityId: homeB,
              repositoryUniqueId: manifestB.idsRepositoryUniqueId,
              documentUniqueId: i.sopInstanceUid,
            })),
          })),
        },
      ],
      transferSyntaxUids: ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'],
    });
    const messageId = newMessageId();
    const chunks: Buffer[] = [];
    const w = new MtomWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), {
      action: Action.RAD69,
    });
    await w.writeRoot(
      encodeEnvelope({ action: Action.RAD69, messageId, to: `${ig1.url}/rad69`, body: req, request: true }),
    );
    await w.end();
    const res = await request(`${ig1.url}/rad69`, {
      method: 'POST',
      headers: { 'content-type': w.contentType },
      body: Buffer.concat(chunks),
    });
    expect(res.statusCode).toBe(200);
    const msg = await readMessage(res.body, String(res.headers['content-type']));
    const r = decodeRetrieveDocumentSetResponse(msg.envelope.payload);
    expect(r.status).toBe('Success');
    const files = new Map(
      s.series
        .flatMap((x) => x.instances)
        .map((i) => [i.sopInstanceUid, readFileSync(join(seeds.B, i.path))]),
    );
    expect(r.documents).toHaveLength(files.size);
    for (const d of r.documents) {
      const bytes =
        d.content.kind === 'xop' ? msg.parts.get(contentIdKey(cidFromHref(d.content.href))) : undefined;
      expect(bytes?.equals(files.get(d.documentUniqueId) as Buffer)).toBe(true);
    }
    expect(
      await eventually(
        () =>
          ig2.logs.filter((l) => l.msg === 'async response handed over to the waiting replica').length >= 3,
      ),
    ).toBe(true);
  });

  it('a replica with another hand-over secret gets nothing handed over (the hand-over is no open door)', async () => {
    const ig3 = await spawnIG(
      'ig3',
      { XCAI_HANDOVER_SECRET: 'some-other-secret', XCAI_PUBLIC_URL: ig2.url },
      1500,
    );
    const a = await soapCall(`${ig3.url}/iti18`, Action.ITI18, findDocuments());
    const res = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
    expect(res.status).toBe('Failure');
    expect(res.errors.map((e) => [e.errorCode, e.location])).toEqual([['XDSUnavailableCommunity', homeB]]);
    expect(
      ig3.logs.some(
        (l) => l.msg === 'hand-over refused' && l.reason === 'hand-over signature does not verify',
      ),
    ).toBe(true);
    await ig3.stop();
  });
});
