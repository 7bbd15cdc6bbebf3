/**
 * Streaming retrieve (issue 3): RAD-69 → initiating gateway → RAD-75 → responding gateway → RAD-69 →
 * Imaging Document Source, with studies far larger than the lookahead budget.
 *  - A consumer that disconnects mid-stream makes the gateways cancel their sub-requests at once:
 *    each sub-answer stops being read long before its end, and every transaction on the way ends
 *    with an undelivered response.
 *  - Memory does not grow with the size of the study: the peak RSS of each gateway process relaying
 *    a 384 MiB study stays close to that of one relaying 32 MiB.
 * No timing assertions; the waits have generous guards so that a hang fails instead of stalling.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import {
  Action,
  encodeEnvelope,
  encodeRetrieveImagingDocumentSetRequest,
  MtomWriter,
  newMessageId,
  readSoapMessage,
  type AnyTransaction,
  type EngineHooks,
  type Finished,
  type ImagingRequest,
  type RunningGateway,
} from '@xcai/shared';
import {
  directory,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
  studyImagingRequest,
} from '../support/federation';
import { peakRss, spawnGateway } from '../support/processes';
import { generateCommunitySeed } from '../../services/reference-community/src/seed/generate';
import { largeSeedSpec } from '../../services/reference-community/src/seed/specs';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 512 * KiB;
const INSTANCES = 768; // 384 MiB
const IIG_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.192';
const TS = ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'];

let seedDir: string;
let m: SeedManifest;
let ids: CommunityProcess;

/** The large seed, generated once per machine into the temp directory. */
async function largeSeed(): Promise<string> {
  const dir = join(tmpdir(), `xcai-test-large-v1-${INSTANCES}x${SIZE}-${process.getuid?.() ?? 0}`);
  if (existsSync(join(dir, 'done'))) return dir;
  const work = mkdtempSync(join(tmpdir(), 'xcai-seeding-'));
  await generateCommunitySeed(largeSeedSpec({ instances: INSTANCES, instanceSize: SIZE }), work);
  mkdirSync(join(work, 'done'));
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another worker won the race
  }
  return dir;
}

/** A RAD-69/RAD-75 request for the first `count` instances of the seeded study. */
function studyRequest(count: number): ImagingRequest {
  return studyImagingRequest(m, m.patients[0].studies[0], { ts: TS, limit: count });
}

function bytesOf(count: number): number {
  return m.patients[0].studies[0].series
    .flatMap((s) => s.instances)
    .slice(0, count)
    .reduce((n, i) => n + i.size, 0);
}

/** Posts a RAD-69 as MTOM, as a consumer does; returns the streaming answer. */
async function post(url: string, req: ImagingRequest) {
  const chunks: Buffer[] = [];
  const w = new MtomWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), {
    action: Action.RAD69,
  });
  const body = encodeRetrieveImagingDocumentSetRequest(req);
  await w.writeRoot(
    encodeEnvelope({ action: Action.RAD69, messageId: newMessageId(), to: url, body, request: true }),
  );
  await w.end();
  return request(url, {
    method: 'POST',
    headers: { 'content-type': w.contentType },
    body: Buffer.concat(chunks),
  });
}

const LIMITS = {
  maxRootBytes: 64 * MiB,
  maxPartHeaderBytes: 16 * KiB,
  maxParts: 100_000,
  maxTotalBytes: 2 ** 40,
};

/** Rejects with `what` if `p` has not settled after `ms` (a hang guard, not a timing assertion). */
function guard<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`hang: ${what} after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

beforeAll(async () => {
  seedDir = await largeSeed();
  m = JSON.parse(readFileSync(join(seedDir, 'manifest.json'), 'utf8')) as SeedManifest;
  ids = await spawnCommunity([seedDir]);
}, 120_000);

afterAll(async () => {
  await ids?.stop();
});

describe('a consumer that disconnects mid-stream', () => {
  let rg: RunningGateway | undefined;
  let ig: RunningGateway | undefined;

  afterEach(async () => {
    await ig?.close();
    await rg?.close();
  });

  it('makes the gateways cancel every upstream sub-request at once', async () => {
    const count = 256; // 128 MiB in two RAD-75 sub-requests of 128 instances (64 MiB) each
    const received: { role: string; target: string; bytes: number }[] = [];
    const finished = (role: string) => {
      const list: { tx: string; outcome: Finished }[] = [];
      let wake: () => void = () => undefined;
      const hooks: EngineHooks = {
        finished(tx: AnyTransaction, outcome: Finished) {
          list.push({ tx: tx.name, outcome });
          wake();
        },
        transferred(call, _ctx, bytes) {
          received.push({ role, target: call.target.label, bytes: bytes.received });
          wake();
        },
      };
      const until = async (ok: () => boolean, what: string) => {
        while (!ok()) await guard(new Promise<void>((r) => (wake = r)), 30_000, `${role}: ${what}`);
      };
      return { list, hooks, until };
    };
    const atRg = finished('responding gateway');
    const atIg = finished('initiating gateway');
    const lookaheadBytes = 2 * MiB;
    rg = await startRG(
      directory({
        homeCommunityId: m.homeCommunityId,
        name: 'RG',
        local: { imagingDocumentSources: [{ repositoryUniqueId: m.idsRepositoryUniqueId, url: ids.ids }] },
        communities: [{ homeCommunityId: IIG_HOME, name: 'IG' }],
      }),
      { hooks: atRg.hooks, limits: { lookaheadBytes } },
    );
    ig = await startIG(
      directory({
        homeCommunityId: IIG_HOME,
        name: 'IG',
        communities: [
          {
            homeCommunityId: m.homeCommunityId,
            name: 'RG',
            endpoints: { rad75: { url: `${rg.url}/rad75` } },
            maxDocumentsPerRequest: count / 2,
          },
        ],
      }),
      { hooks: atIg.hooks, limits: { lookaheadBytes } },
    );

    const res = await post(`${ig.url}/rad69`, studyRequest(count));
    expect(res.statusCode).toBe(200);
    const msg = await readSoapMessage(res.body, String(res.headers['content-type']), LIMITS);
    // Read three whole instances, then hang up in the middle of the fourth.
    for (let k = 0; k < 4; k++) {
      const part = await guard(msg.attachments.next(), 30_000, 'next part');
      expect(part).not.toBeNull();
      let n = 0;
      for await (const c of part!.body) {
        n += (c as Buffer).length;
        if (k === 3 && n > 100 * KiB) break;
      }
    }
    res.body.destroy();

    // The initiating gateway's RAD-69 and both responding-gateway RAD-75s end undelivered, and every
    // sub-answer (two RAD-75 answers at the initiating gateway, two RAD-69 answers at the
    // responding gateway) stops being read far from its end.
    await atIg.until(() => atIg.list.length >= 1, 'RAD-69 finished');
    await atRg.until(() => atRg.list.length >= 2, 'both RAD-75 finished');
    const subAnswer = bytesOf(count / 2);
    await atRg.until(
      () => received.filter((r) => r.role === 'responding gateway').length >= 2,
      'RAD-69 bodies closed',
    );
    await atIg.until(
      () => received.filter((r) => r.role === 'initiating gateway').length >= 2,
      'RAD-75 bodies closed',
    );

    expect(atIg.list.map((f) => [f.tx, f.outcome.delivery?.ok])).toEqual([['RAD-69', false]]);
    expect(atRg.list.map((f) => [f.tx, f.outcome.delivery?.ok])).toEqual([
      ['RAD-75', false],
      ['RAD-75', false],
    ]);
    expect(received).toHaveLength(4);
    for (const r of received) expect(r.bytes).toBeLessThan(subAnswer / 2);
  }, 90_000);
});

describe('memory', () => {
  /** Relays the first `count` instances through fresh gateway processes; returns their peak RSS. */
  async function relay(count: number): Promise<{ iig: number; rig: number; bytes: number }> {
    const rig = await spawnGateway('responding', {
      homeCommunityId: m.homeCommunityId,
      name: 'RG',
      local: {
        imagingDocumentSources: [
          { repositoryUniqueId: m.idsRepositoryUniqueId, url: ids.ids, timeoutMs: 60_000 },
        ],
      },
      communities: [{ homeCommunityId: IIG_HOME, name: 'IG' }],
    });
    const iig = await spawnGateway('initiating', {
      homeCommunityId: IIG_HOME,
      name: 'IG',
      communities: [
        {
          homeCommunityId: m.homeCommunityId,
          name: 'RG',
          endpoints: { rad75: { url: `${rig.url}/rad75`, timeoutMs: 60_000 } },
          maxDocumentsPerRequest: INSTANCES,
        },
      ],
    });
    try {
      const res = await post(`${iig.url}/rad69`, studyRequest(count));
      expect(res.statusCode).toBe(200);
      const msg = await readSoapMessage(res.body, String(res.headers['content-type']), LIMITS);
      expect(msg.envelope.toString()).toContain('ResponseStatusType:Success');
      let bytes = 0;
      let parts = 0;
      for (let p = await msg.attachments.next(); p; p = await msg.attachments.next()) {
        parts++;
        for await (const c of p.body) bytes += (c as Buffer).length;
      }
      expect(parts).toBe(count);
      return { iig: peakRss(iig.proc.pid!), rig: peakRss(rig.proc.pid!), bytes };
    } finally {
      await Promise.all([iig.stop(), rig.stop()]);
    }
  }

  it('does not grow with the size of the study (384 MiB vs 32 MiB, lookahead 16 MiB)', async () => {
    const small = await relay(64);
    const large = await relay(INSTANCES);
    expect(large.bytes).toBe(bytesOf(INSTANCES));
    // Buffering the study would add ~350 MiB; allow for heap and allocator noise.
    for (const role of ['iig', 'rig'] as const) {
      expect(large[role] - small[role]).toBeLessThan(128 * MiB);
      expect(large[role]).toBeLessThan(384 * MiB);
    }
  }, 180_000);
});
