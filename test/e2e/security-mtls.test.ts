/**
 * Mutual TLS between gateways (issue 6, R5, R9, R27, R30): the responding gateway maps the client
 * certificate to a community of its directory (trust anchor + name), refuses what maps to none or to
 * a community it does not accept, audits handshake and identity failures; the initiating gateway
 * verifies each community's gateway against that community's own trust anchors and names; an async
 * response is accepted only from the certificate of the community asked.
 */
import { createServer as createHttpsServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import {
  Action,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  encodeAdhocQueryResponse,
  encodeEnvelope,
  newMessageId,
  type RunningGateway,
  type SecurityAuditEvent,
  type ServiceSettings,
  type TransactionAuditEvent,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { makePki, postWith, type TestPki } from '../support/certs';
import {
  demoSeeds,
  directory,
  MemoryAuditSink,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HOME_C = 'urn:oid:1.3.6.1.4.1.21367.13.70.203';
const HOME_D = 'urn:oid:1.3.6.1.4.1.21367.13.70.204';

let pki: TestPki;
let rogue: TestPki;
let refA: CommunityProcess;
let refB: CommunityProcess;
let rg: RunningGateway;
let ig: RunningGateway;
const rgAudit = new MemoryAuditSink();
const igAudit = new MemoryAuditSink();
const stop: (() => Promise<void>)[] = [];

function settings(tls: ServiceSettings['tls']): ServiceSettings {
  return {
    directoryFile: '(inline)',
    host: '127.0.0.1',
    port: 0,
    mgmtPort: -1,
    audit: { transport: 'none' },
    maxRequestBytes: 4 * 1024 * 1024,
    tls,
  };
}

const query = () => encodeFindDocumentsRequest(PATIENT);

const iti38 = (url: string) =>
  encodeEnvelope({ action: Action.ITI38, to: url, body: query(), request: true });
const iti18 = (url: string) =>
  encodeEnvelope({ action: Action.ITI18, to: url, body: query(), request: true });

const security = (sink: MemoryAuditSink, kind: SecurityAuditEvent['kind']) =>
  sink.events.filter((e): e is SecurityAuditEvent => e.kind === kind);

async function until(check: () => boolean, what: string): Promise<void> {
  // A hang detector, not a timing assertion.
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!check()) throw new Error(`never happened: ${what}`);
}

beforeAll(async () => {
  pki = makePki(['gw-a', 'gw-b', 'gw-c', 'gw-d', 'consumer'], 'trusted');
  // Another CA, trusted by the RG only as community C's anchor; it also issues an impostor "gw-a".
  rogue = makePki(['gw-a', 'gw-c', 'gw-b'], 'rogue');
  const seeds = await demoSeeds();
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  stop.push(refA.stop, refB.stop);
  rg = await startRG(
    directory({
      homeCommunityId: refB.homeCommunityId,
      name: 'B',
      local: { registry: { url: refB.registry } },
      communities: [
        {
          homeCommunityId: refA.homeCommunityId,
          name: 'A',
          identity: { trustAnchors: [pki.ca], names: ['gw-a'] },
        },
        { homeCommunityId: HOME_C, name: 'C', identity: { trustAnchors: [rogue.ca], names: ['gw-c'] } },
        {
          homeCommunityId: HOME_D,
          name: 'D (agreement ended)',
          acceptRequests: false,
          identity: { trustAnchors: [pki.ca], names: ['gw-d'] },
        },
      ],
    }),
    { settings: settings(pki.settings('gw-b', 'required')), audit: rgAudit },
  );
  stop.push(() => rg.close());
  ig = await startIG(
    directory({
      homeCommunityId: refA.homeCommunityId,
      name: 'A',
      deadlineMs: 8000,
      local: { registry: { url: refA.registry } },
      communities: [
        {
          homeCommunityId: refB.homeCommunityId,
          name: 'B',
          endpoints: { iti38: `${rg.url}/iti38` },
          identity: { trustAnchors: [pki.ca], names: ['gw-b'] },
        },
      ],
    }),
    { settings: settings(pki.settings('gw-a', 'optional')), audit: igAudit },
  );
  stop.push(() => ig.close());
}, 90_000);

afterAll(async () => {
  for (const s of stop.reverse()) await s();
  pki?.remove();
  rogue?.remove();
});

describe('responding gateway: certificate → community', () => {
  it('serves the community whose certificate and anchor match, and records it', async () => {
    rgAudit.events.length = 0;
    const r = await postWith(pki.client('consumer'), `${ig.url}/iti18`, iti18(`${ig.url}/iti18`));
    if ('error' in r) throw r.error;
    expect(r.status).toBe(200);
    const env = decodeEnvelope(r.text, {}, false);
    const res = decodeAdhocQueryResponse(env.doc, env.payload);
    expect(res.errors).toEqual([]);
    expect(new Set(res.objects.map((o) => o.attr('home')))).toEqual(
      new Set([refA.homeCommunityId, refB.homeCommunityId]),
    );
    await until(() => rgAudit.events.some((e) => e.kind === 'transaction'), 'RG audit record');
    const tx = rgAudit.events.find((e): e is TransactionAuditEvent => e.kind === 'transaction');
    expect(tx?.transaction).toBe('ITI-38');
    expect(tx?.outcome).toBe(0);
    expect(tx?.requester.certificateSubject).toContain('CN=gw-a');
    const metrics = await rg.observability.metrics.render();
    expect(metrics.body).toContain(`peer="${refA.homeCommunityId}"`);
  });

  it('refuses a certificate of a community that is not accepted (acceptRequests: false)', async () => {
    const r = await postWith(pki.client('gw-d'), `${rg.url}/iti38`, iti38(`${rg.url}/iti38`));
    if ('error' in r) throw r.error;
    expect(r.status).toBe(400);
    expect(r.text).toContain(`community ${HOME_D} is not accepted here`);
  });

  it('refuses a trusted certificate that names no community, and audits it', async () => {
    rgAudit.events.length = 0;
    const r = await postWith(pki.client('consumer'), `${rg.url}/iti38`, iti38(`${rg.url}/iti38`));
    if ('error' in r) throw r.error;
    expect(r.status).toBe(400);
    expect(r.text).toContain('does not belong to a community of the directory');
    const ev = security(rgAudit, 'node-authentication-failure');
    expect(ev).toHaveLength(1);
    expect(ev[0].peer?.certificateSubject).toContain('CN=consumer');
  });

  it("refuses a community's name from another community's anchor (impostor)", async () => {
    // The rogue CA is a trust anchor of the RG (for C), and issued a certificate named gw-a.
    const r = await postWith(
      rogue.client('gw-a', { extraCa: [pki.ca] }),
      `${rg.url}/iti38`,
      iti38(`${rg.url}/iti38`),
    );
    if ('error' in r) throw r.error;
    expect(r.status).toBe(400);
    expect(r.text).toContain('does not belong to a community of the directory');
    // …while C's own certificate from that anchor is C.
    const c = await postWith(
      rogue.client('gw-c', { extraCa: [pki.ca] }),
      `${rg.url}/iti38`,
      iti38(`${rg.url}/iti38`),
    );
    if ('error' in c) throw c.error;
    expect(c.status).toBe(200);
  });

  it('fails the handshake without a certificate or with an unknown CA, and audits it', async () => {
    rgAudit.events.length = 0;
    const none = await postWith(pki.client(), `${rg.url}/iti38`, iti38(`${rg.url}/iti38`));
    expect('error' in none || none.status >= 400).toBe(true);
    const other = makePki(['gw-a'], 'unknown');
    try {
      const unknown = await postWith(
        other.client('gw-a', { extraCa: [pki.ca] }),
        `${rg.url}/iti38`,
        iti38(`${rg.url}/iti38`),
      );
      expect('error' in unknown).toBe(true);
    } finally {
      other.remove();
    }
    await until(() => security(rgAudit, 'node-authentication-failure').length >= 1, 'handshake audit');
    const ev = security(rgAudit, 'node-authentication-failure');
    expect(ev[0].description).toMatch(/TLS handshake refused/);
    expect(ev[0].peer?.networkAccessPointId).toMatch(/127\.0\.0\.1/);
  });

  it('refuses TLS below 1.2 and non-AEAD cipher suites', async () => {
    const old = await postWith(
      pki.client('gw-a', { tls: { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' } }),
      `${rg.url}/iti38`,
      iti38(`${rg.url}/iti38`),
    );
    expect('error' in old).toBe(true);
    const cbc = await postWith(
      pki.client('gw-a', {
        tls: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA' },
      }),
      `${rg.url}/iti38`,
      iti38(`${rg.url}/iti38`),
    );
    expect('error' in cbc).toBe(true);
    const gcm = await postWith(
      pki.client('gw-a', { tls: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' } }),
      `${rg.url}/iti38`,
      iti38(`${rg.url}/iti38`),
    );
    if ('error' in gcm) throw gcm.error;
    expect(gcm.status).toBe(200);
  });
});

describe('initiating gateway: each community verified against its own identity', () => {
  async function igFor(identity: Record<string, unknown>, audit: MemoryAuditSink): Promise<RunningGateway> {
    const g = await startIG(
      directory({
        homeCommunityId: refA.homeCommunityId,
        name: 'A',
        deadlineMs: 8000,
        communities: [
          {
            homeCommunityId: refB.homeCommunityId,
            name: 'B',
            endpoints: { iti38: `${rg.url}/iti38` },
            identity,
          },
        ],
      }),
      { settings: settings(pki.settings('gw-a', 'optional')), audit },
    );
    stop.push(() => g.close());
    return g;
  }

  it.each([
    ['a name the peer certificate does not carry', () => ({ trustAnchors: [pki.ca], names: ['gw-c'] })],
    ['another community anchor', () => ({ trustAnchors: [rogue.ca], names: ['gw-b'] })],
  ])('refuses the peer with %s, reports the community unavailable and audits it', async (_w, identity) => {
    const audit = new MemoryAuditSink();
    const g = await igFor(identity(), audit);
    const r = await postWith(pki.client('consumer'), `${g.url}/iti18`, iti18(`${g.url}/iti18`));
    if ('error' in r) throw r.error;
    const env = decodeEnvelope(r.text, {}, false);
    const res = decodeAdhocQueryResponse(env.doc, env.payload);
    expect(res.status).toBe('Failure');
    expect(res.errors.map((e) => e.location)).toEqual([refB.homeCommunityId]);
    const ev = security(audit, 'node-authentication-failure');
    expect(ev.length).toBeGreaterThanOrEqual(1);
    expect(ev[0].description).toContain(`outbound to ${rg.url}/iti38`);
  });
});

describe('async responses are bound to the certificate of the community asked (R30)', () => {
  let peer: Server;
  let held: { messageId: string; replyTo: string } | undefined;
  let asyncIg: RunningGateway;

  beforeAll(async () => {
    // A responding gateway of community B that answers 202 and keeps the request (gw-b certificate).
    peer = createHttpsServer(
      { cert: readFileSync(pki.cert('gw-b')), key: readFileSync(pki.key('gw-b')), ca: readFileSync(pki.ca) },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const env = decodeEnvelope(Buffer.concat(chunks), {}, false);
          held = { messageId: env.wsa.messageId as string, replyTo: env.wsa.replyTo as string };
          res.writeHead(202).end();
        });
      },
    );
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
    const url = `https://127.0.0.1:${(peer.address() as AddressInfo).port}/iti38`;
    asyncIg = await startIG(
      directory({
        homeCommunityId: refA.homeCommunityId,
        name: 'A',
        deadlineMs: 20_000,
        communities: [
          {
            homeCommunityId: refB.homeCommunityId,
            name: 'B',
            async: true,
            endpoints: { iti38: { url, timeoutMs: 20_000 } },
            identity: { trustAnchors: [pki.ca], names: ['gw-b'] },
          },
          { homeCommunityId: HOME_C, name: 'C', identity: { trustAnchors: [pki.ca], names: ['gw-c'] } },
        ],
      }),
      { settings: settings(pki.settings('gw-a', 'optional')), audit: new MemoryAuditSink() },
    );
  }, 30_000);

  afterAll(async () => {
    await asyncIg?.close();
    await new Promise<void>((r) => peer.close(() => r()));
  });

  it("refuses the response from C's certificate and accepts B's", async () => {
    const answer = postWith(pki.client('consumer'), `${asyncIg.url}/iti18`, iti18(`${asyncIg.url}/iti18`));
    await until(() => held !== undefined, 'the async request reached community B');
    const h = held as { messageId: string; replyTo: string };
    expect(h.replyTo).toBe(`${asyncIg.url}/async-response`);
    const response = encodeEnvelope({
      action: Action.ITI38Response,
      messageId: newMessageId(),
      relatesTo: h.messageId,
      to: h.replyTo,
      body: encodeAdhocQueryResponse('Success', [], []),
      request: false,
    });
    const forged = await postWith(pki.client('gw-c'), h.replyTo, response);
    if ('error' in forged) throw forged.error;
    expect(forged.status).toBe(403);
    expect(forged.text).toContain(`sent by community ${HOME_C}`);
    const real = await postWith(pki.client('gw-b'), h.replyTo, response);
    if ('error' in real) throw real.error;
    expect(real.status).toBe(202);
    const r = await answer;
    if ('error' in r) throw r.error;
    const env = decodeEnvelope(r.text, {}, false);
    expect(decodeAdhocQueryResponse(env.doc, env.payload).status).toBe('Success');
  });
});

describe('initiating gateway: consumers (client certificates optional by XCAI_TLS_CLIENT_AUTH)', () => {
  let strict: RunningGateway;
  let open: RunningGateway;
  const audit = new MemoryAuditSink();

  beforeAll(async () => {
    const dir = (consumers: Record<string, unknown>[]) =>
      directory({
        homeCommunityId: refA.homeCommunityId,
        name: 'A',
        local: { registry: { url: refA.registry } },
        consumers,
      });
    const pacs = { name: 'PACS', identity: { trustAnchors: [pki.ca], names: ['consumer'] } };
    strict = await startIG(dir([pacs]), { settings: settings(pki.settings('gw-a', 'optional')), audit });
    open = await startIG(dir([pacs, { name: 'any workstation on the imaging VLAN' }]), {
      settings: settings(pki.settings('gw-a', 'optional')),
      audit: new MemoryAuditSink(),
    });
    stop.push(
      () => strict.close(),
      () => open.close(),
    );
  });

  it('admits the consumer its certificate names, and refuses others where every consumer has an identity', async () => {
    const ok = await postWith(pki.client('consumer'), `${strict.url}/iti18`, iti18(`${strict.url}/iti18`));
    expect('error' in ok ? ok.error.message : ok.status).toBe(200);
    audit.events.length = 0;
    const anonymous = await postWith(pki.client(), `${strict.url}/iti18`, iti18(`${strict.url}/iti18`));
    expect('error' in anonymous ? anonymous.error.message : anonymous.text).toContain(
      'a client certificate of a consumer of this gateway is required',
    );
    const gateway = await postWith(pki.client('gw-c'), `${strict.url}/iti18`, iti18(`${strict.url}/iti18`));
    expect('error' in gateway ? gateway.error.message : gateway.text).toContain(
      'does not belong to a consumer of this gateway',
    );
    expect(security(audit, 'node-authentication-failure').length).toBe(2);
  });

  it('refuses a certificate that does not verify even though certificates are optional', async () => {
    const other = makePki(['consumer'], 'stranger');
    try {
      const r = await postWith(
        other.client('consumer', { extraCa: [pki.ca] }),
        `${strict.url}/iti18`,
        iti18(`${strict.url}/iti18`),
      );
      expect('error' in r ? r.error.message : r.text).toContain('client certificate not accepted');
    } finally {
      other.remove();
    }
  });

  it('admits callers without a certificate through a consumer entry without identity', async () => {
    const r = await postWith(pki.client(), `${open.url}/iti18`, iti18(`${open.url}/iti18`));
    expect('error' in r ? r.error.message : r.status).toBe(200);
  });
});
