/**
 * Asynchronous web services for the retrieve transactions (MTOM both ways), against the real Redis
 * at REDIS_URL: ITI-43 and RAD-69 served async at the initiating gateway, ITI-39 and RAD-75 served
 * async at the responding gateway, and ITI-39 / RAD-75 used async from the initiating gateway
 * (the MTOM response lands on /async-response and streams into the merge). Documents and DICOM
 * instances must arrive byte-exact.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import {
  Action,
  cidFromHref,
  contentIdKey,
  decodeRetrieveDocumentSetResponse,
  encodeEnvelope,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  MtomWriter,
  newMessageId,
  type DocumentRequest,
  type ImagingRequest,
  type RunningGateway,
  type ServiceSettings,
  encodeFindDocumentsRequest,
  APPROVED_STATUS,
} from '@xcai/shared';
import type Redis from 'ioredis';
import { soapCall } from '../support/client';
import {
  demoSeeds,
  igDirectoryFor,
  remoteCommunity,
  rgDirectoryFor,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
  type Label,
  studyImagingRequest,
} from '../support/federation';
import { deIncludeXop, xsdErrors } from '../support/xsd';
import {
  readMessage,
  startReplyReceiver,
  type ReceivedMessage,
  type ReplyReceiver,
} from '../support/async-peer';
import { deleteUnder, inspector, keysUnder, REDIS_URL, uniquePrefix } from '../support/redis';
import { readManifest } from '../../services/reference-community/src/server';
import type { ManifestStudy, SeedManifest } from '../../services/reference-community/src/seed/types';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const TS = ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'];
const prefix = uniquePrefix('async-retrieve');

let seeds: Record<Label, string>;
let m: Record<Label, SeedManifest>;
let refA: CommunityProcess, refB: CommunityProcess;
let rgB: RunningGateway, ig: RunningGateway;
let receiver: ReplyReceiver;
let redis: Redis;
const stop: (() => Promise<void>)[] = [];

const settings = (): ServiceSettings => ({
  directoryFile: '(inline)',
  host: '127.0.0.1',
  port: 0,
  mgmtPort: -1,
  audit: { transport: 'none' },
  maxRequestBytes: 4 * 1024 * 1024,
  redis: REDIS_URL,
  redisKeyPrefix: prefix,
});
const home = (k: Label) => m[k].homeCommunityId;
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

function kosRequests(k: Label): DocumentRequest[] {
  return m[k].documentEntries
    .filter((d) => d.patientId === PATIENT_1 && d.availabilityStatus === APPROVED_STATUS)
    .map((d) => ({
      homeCommunityId: home(k),
      repositoryUniqueId: d.repositoryUniqueId,
      documentUniqueId: d.uniqueId,
    }));
}

function study(k: Label): ManifestStudy {
  return m[k].patients.find((p) => p.id === PATIENT_1)?.studies[0] as ManifestStudy;
}

function studyRequest(k: Label): ImagingRequest {
  return studyImagingRequest(m[k], study(k), { ts: TS });
}

function instanceFile(k: Label, sop: string): Buffer {
  for (const r of study(k).series)
    for (const i of r.instances) if (i.sopInstanceUid === sop) return readFileSync(join(seeds[k], i.path));
  throw new Error(`no instance ${sop}`);
}

/** Sends an MTOM request the way a consumer does; `replyTo` makes it asynchronous. */
async function mtomRequest(url: string, action: string, body: string, replyTo?: string) {
  const messageId = newMessageId();
  const chunks: Buffer[] = [];
  const w = new MtomWriter(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), {
    action,
  });
  await w.writeRoot(encodeEnvelope({ action, messageId, to: url, replyTo, body, request: true }));
  await w.end();
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': w.contentType },
    body: Buffer.concat(chunks),
  });
  if (replyTo) return { status: res.statusCode, text: await res.body.text(), messageId, message: undefined };
  const message = await readMessage(res.body, String(res.headers['content-type']));
  return { status: res.statusCode, text: '', messageId, message };
}

function documents(msg: Pick<ReceivedMessage, 'envelope' | 'parts'>) {
  const r = decodeRetrieveDocumentSetResponse(msg.envelope.payload);
  return {
    status: r.status,
    errors: r.errors,
    docs: r.documents.map((d) => ({
      home: d.homeCommunityId,
      id: d.documentUniqueId,
      bytes:
        d.content.kind === 'inline'
          ? Buffer.from(d.content.base64, 'base64')
          : (msg.parts.get(contentIdKey(cidFromHref(d.content.href))) ?? Buffer.alloc(0)),
    })),
  };
}

function expectKos(got: { home?: string; id: string; bytes: Buffer }[], k: Label[]): void {
  const want = k.flatMap((x) => kosRequests(x));
  expect(got.map((d) => d.id).sort()).toEqual(want.map((d) => d.documentUniqueId).sort());
  for (const d of got) {
    const kk = k.find((x) => home(x) === d.home) as Label;
    const entry = m[kk].documentEntries.find((e) => e.uniqueId === d.id);
    expect([sha1(d.bytes), d.bytes.length]).toEqual([entry?.hash, entry?.size]);
  }
}

beforeAll(async () => {
  seeds = await demoSeeds();
  m = { A: readManifest(seeds.A), B: readManifest(seeds.B), C: readManifest(seeds.C) };
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  stop.push(refA.stop, refB.stop);
  rgB = await startRG(
    rgDirectoryFor(refB, [
      { homeCommunityId: home('A'), name: 'A', replyTo: ['http://127.0.0.1:*'] } as never,
    ]),
    { settings: settings() },
  );
  stop.push(rgB.close);
  ig = await startIG(
    igDirectoryFor(refA, [remoteCommunity('B', home('B'), rgB.url, { async: true })], {
      consumers: [{ name: 'PACS', replyTo: ['http://127.0.0.1:*'] }],
    }),
    { settings: settings(), limits: { lookaheadBytes: 256 * 1024 } },
  );
  stop.push(ig.close);
  receiver = await startReplyReceiver();
  stop.push(receiver.close);
  redis = inspector();
  stop.push(async () => {
    await deleteUnder(redis, prefix);
    redis.disconnect();
  });
  // The consumer queries first: the gateway keeps hash/size (in Redis) to check the retrieves.
  const q = encodeFindDocumentsRequest(PATIENT_1);
  expect((await soapCall(`${ig.url}/iti18`, Action.ITI18, q)).status).toBe(200);
}, 90_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s();
});

describe('integrity store in Redis', () => {
  it('keeps hash/size of what the query announced, under hashed keys with a TTL', async () => {
    const keys = [...(await keysUnder(redis, prefix))].filter(([k]) => k.includes(':integrity:'));
    expect(keys.length).toBeGreaterThanOrEqual(kosRequests('A').length + kosRequests('B').length);
    for (const [k, ttl] of keys) {
      expect(ttl).toBeGreaterThan(0);
      expect(k).not.toMatch(/\d+\.\d+\.\d+/); // no document or repository ids in the key
      expect(await redis.get(k)).toMatch(/^[0-9a-f]{40}\|\d+$/);
    }
  });
});

describe('used async: ITI-39 and RAD-75 from the initiating gateway', () => {
  it('ITI-43 (sync) whose community B is asked with ITI-39 asynchronously: byte-exact KOS from A and B', async () => {
    const a = await mtomRequest(
      `${ig.url}/iti43`,
      Action.ITI43,
      encodeRetrieveDocumentSetRequest([...kosRequests('A'), ...kosRequests('B')]),
    );
    expect(a.status).toBe(200);
    const r = documents(a.message as ReceivedMessage);
    expect([r.status, r.errors]).toEqual(['Success', []]);
    expectKos(r.docs, ['A', 'B']);
  });

  it('RAD-69 (sync) whose community B is asked with RAD-75 asynchronously: byte-exact instances', async () => {
    const a = await mtomRequest(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(studyRequest('B')),
    );
    expect(a.status).toBe(200);
    const r = documents(a.message as ReceivedMessage);
    expect(r.status).toBe('Success');
    const n = study('B').series.reduce((s, x) => s + x.instances.length, 0);
    expect(r.docs).toHaveLength(n);
    for (const d of r.docs) expect(d.bytes.equals(instanceFile('B', d.id))).toBe(true);
    expect([...(await keysUnder(redis, prefix)).keys()].filter((k) => k.includes(':pending:'))).toEqual([]);
  });
});

describe('served async retrieves (MTOM response POSTed to ReplyTo)', () => {
  it('ITI-43 at the initiating gateway', async () => {
    const a = await mtomRequest(
      `${ig.url}/iti43`,
      Action.ITI43,
      encodeRetrieveDocumentSetRequest([...kosRequests('A'), ...kosRequests('B')]),
      `${receiver.url}/reply`,
    );
    expect([a.status, a.text]).toEqual([202, '']);
    const msg = await receiver.next(a.messageId);
    expect(msg.contentType).toMatch(/^multipart\/related/);
    expect([msg.envelope.wsa.action, msg.envelope.wsa.to]).toEqual([
      Action.ITI43Response,
      `${receiver.url}/reply`,
    ]);
    expect(xsdErrors([deIncludeXop(msg.xml)])).toBe('');
    const r = documents(msg);
    expect(r.status).toBe('Success');
    expectKos(r.docs, ['A', 'B']);
  });

  it('RAD-69 at the initiating imaging gateway', async () => {
    const a = await mtomRequest(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest(studyRequest('B')),
      `${receiver.url}/reply`,
    );
    expect(a.status).toBe(202);
    const msg = await receiver.next(a.messageId);
    expect(msg.envelope.wsa.action).toBe(Action.RAD69Response);
    const r = documents(msg);
    expect(r.status).toBe('Success');
    for (const d of r.docs) expect(d.bytes.equals(instanceFile('B', d.id))).toBe(true);
    expect(r.docs.length).toBeGreaterThan(0);
  });

  it('ITI-39 at the responding gateway', async () => {
    const a = await mtomRequest(
      `${rgB.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest(kosRequests('B')),
      `${receiver.url}/reply`,
    );
    expect(a.status).toBe(202);
    const msg = await receiver.next(a.messageId);
    expect(msg.envelope.wsa.action).toBe(Action.ITI39Response);
    expect(xsdErrors([deIncludeXop(msg.xml)])).toBe('');
    const r = documents(msg);
    expect(r.status).toBe('Success');
    expectKos(r.docs, ['B']);
  });

  it('RAD-75 at the responding imaging gateway', async () => {
    const a = await mtomRequest(
      `${rgB.url}/rad75`,
      Action.RAD75,
      encodeRetrieveImagingDocumentSetRequest(studyRequest('B')),
      `${receiver.url}/reply`,
    );
    expect(a.status).toBe(202);
    const msg = await receiver.next(a.messageId);
    expect(msg.envelope.wsa.action).toBe(Action.RAD75Response);
    const r = documents(msg);
    expect(r.status).toBe('Success');
    for (const d of r.docs)
      expect([d.home, d.bytes.equals(instanceFile('B', d.id))]).toEqual([home('B'), true]);
  });
});
