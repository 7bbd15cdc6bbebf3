/**
 * Egress only to the directory (issue 6, R8, R29): nothing in a message — ReplyTo, FaultTo, wsa:To,
 * homeCommunityId, repositoryUniqueId — makes a gateway connect to an address not configured for
 * that purpose. A trap server counts every connection made to it; it must see none.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  Action,
  CallFailure,
  decodeAdhocQueryResponse,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  NS,
  Outbound,
  type RunningGateway,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { retrieveCall, soapCall, type SoapAnswer } from '../support/client';
import {
  demoSeeds,
  directory,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';

let refA: CommunityProcess;
let refB: CommunityProcess;
let ig: RunningGateway;
let rg: RunningGateway;
let trap: Server;
let trapHits = 0;
let receiver: HttpServer;
const received: string[] = [];
let trapPort: number;
let recvPort: number;

const UNKNOWN_HOME = 'urn:oid:1.2.3.999';

const query = (home?: string) =>
  encodeFindDocumentsRequest('JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO', { home });

beforeAll(async () => {
  trap = createNetServer((s) => {
    trapHits++;
    s.destroy();
  });
  await new Promise<void>((r) => trap.listen(0, '127.0.0.1', () => r()));
  trapPort = (trap.address() as AddressInfo).port;
  receiver = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(Buffer.concat(chunks).toString());
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  recvPort = (receiver.address() as AddressInfo).port;
  const seeds = await demoSeeds();
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  const replyTo = [`http://127.0.0.1:${recvPort}/replies`];
  rg = await startRG(
    directory({
      homeCommunityId: refB.homeCommunityId,
      name: 'B',
      local: {
        registry: { url: refB.registry },
        repositories: [{ repositoryUniqueId: refB.repositoryUniqueId, url: refB.repository }],
      },
      communities: [{ homeCommunityId: refA.homeCommunityId, name: 'A', replyTo }],
    }),
  );
  ig = await startIG(
    directory({
      homeCommunityId: refA.homeCommunityId,
      name: 'A',
      deadlineMs: 8000,
      local: {
        registry: { url: refA.registry },
        repositories: [{ repositoryUniqueId: refA.repositoryUniqueId, url: refA.repository }],
        imagingDocumentSources: [{ repositoryUniqueId: refA.idsRepositoryUniqueId, url: refA.ids }],
      },
      communities: [
        {
          homeCommunityId: refB.homeCommunityId,
          name: 'B',
          endpoints: { iti38: `${rg.url}/iti38`, iti39: `${rg.url}/iti39` },
        },
      ],
      consumers: [{ name: 'PACS', replyTo }],
    }),
  );
}, 90_000);

afterAll(async () => {
  await ig?.close();
  await rg?.close();
  await refA?.stop();
  await refB?.stop();
  await new Promise<void>((r) => trap.close(() => r()));
  await new Promise<void>((r) => receiver.close(() => r()));
});

const hostileReplyTo = () => [
  `http://127.0.0.1:${trapPort}/replies`,
  `http://127.0.0.1:${recvPort}@127.0.0.1:${trapPort}/replies`,
  `http://127.0.0.1:${recvPort}\\@127.0.0.1:${trapPort}/replies`,
  `http://user:pw@127.0.0.1:${recvPort}/replies`,
  `http://127.0.0.1:${recvPort}/replies/../../x`,
  `http://127.0.0.1:${recvPort}/repliesX`,
  `http://127.0.0.1:${recvPort}/replies#@127.0.0.1:${trapPort}`,
  `http://localhost:${trapPort}/replies`,
  `http://0x7f.0.0.1:${trapPort}/replies`,
  `http://2130706433:${trapPort}/replies`,
  `http://[::ffff:127.0.0.1]:${trapPort}/replies`,
  `https://127.0.0.1:${recvPort}/replies`,
  `http://１２７.0.0.1:${trapPort}/replies`,
  `file:///etc/passwd`,
  `gopher://127.0.0.1:${trapPort}/_x`,
  ` http://127.0.0.1:${trapPort}/replies`,
];

function faultSubcode(a: SoapAnswer): string | undefined {
  expect(a.envelope.payload.is(NS.soap, 'Fault')).toBe(true);
  return a.envelope.payload
    .child(NS.soap, 'Code')
    ?.child(NS.soap, 'Subcode')
    ?.child(NS.soap, 'Value')
    ?.trimmedText();
}

describe('ReplyTo / FaultTo cannot point a gateway elsewhere', () => {
  it.each(['initiating', 'responding'] as const)(
    '%s gateway refuses every address outside the grant',
    async (side) => {
      const [url, action] =
        side === 'initiating' ? [`${ig.url}/iti18`, Action.ITI18] : [`${rg.url}/iti38`, Action.ITI38];
      for (const bad of hostileReplyTo()) {
        const a = await soapCall(url, action, query(), { replyTo: bad });
        expect([a.status, bad]).toEqual([400, bad]);
        expect(faultSubcode(a)).toBe('wsa:InvalidAddressingHeader');
      }
      const goodReply = `http://127.0.0.1:${recvPort}/replies`;
      const xml = (faultTo: string) =>
        soapCall(url, action, query(), {
          replyTo: goodReply,
          extraHeaders: `<wsa:FaultTo><wsa:Address>${faultTo}</wsa:Address></wsa:FaultTo>`,
        });
      const badFault = await xml(`http://127.0.0.1:${trapPort}/replies`);
      expect(badFault.status).toBe(400);
      expect(faultSubcode(badFault)).toBe('wsa:InvalidAddressingHeader');
      expect(trapHits).toBe(0);
    },
  );

  it('delivers to the granted address (positive control)', async () => {
    const before = received.length;
    const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, query(), {
      replyTo: `http://127.0.0.1:${recvPort}/replies/pacs-1`,
    });
    expect(a.status).toBe(202);
    for (let i = 0; i < 400 && received.length === before; i++) await new Promise((r) => setTimeout(r, 25));
    expect(received.length).toBe(before + 1);
    expect(received[before]).toContain('AdhocQueryResponse');
  });
});

describe('ids in the message select only directory entries', () => {
  it('an unknown homeCommunityId in a query or retrieve gives an error and no connection', async () => {
    const q = await soapCall(`${ig.url}/iti18`, Action.ITI18, query(UNKNOWN_HOME));
    const res = decodeAdhocQueryResponse(q.envelope.doc, q.envelope.payload);
    expect(res.status).toBe('Failure');
    expect(res.errors[0].errorCode).toBe('XDSUnknownCommunity');
    const r = await retrieveCall(
      `${ig.url}/iti43`,
      Action.ITI43,
      encodeRetrieveDocumentSetRequest([
        {
          homeCommunityId: UNKNOWN_HOME,
          repositoryUniqueId: refA.repositoryUniqueId,
          documentUniqueId: '1.2.3',
        },
      ]),
    );
    expect(r.registryStatus).toBe('Failure');
    expect(r.errors[0].errorCode).toBe('XDSUnknownCommunity');
  });

  it('an unknown repositoryUniqueId gives an error, at both gateways', async () => {
    const igr = await retrieveCall(
      `${ig.url}/iti43`,
      Action.ITI43,
      encodeRetrieveDocumentSetRequest([
        {
          homeCommunityId: refA.homeCommunityId,
          repositoryUniqueId: '1.2.3.4.5.6.7',
          documentUniqueId: '1.2.3',
        },
      ]),
    );
    expect(igr.registryStatus).toBe('Failure');
    expect(igr.errors[0].errorCode).toBe('XDSUnknownRepositoryId');
    const rad = await retrieveCall(
      `${ig.url}/rad69`,
      Action.RAD69,
      encodeRetrieveImagingDocumentSetRequest({
        studies: [
          {
            studyInstanceUid: '1.2.3',
            series: [
              {
                seriesInstanceUid: '1.2.3.1',
                documents: [
                  {
                    homeCommunityId: refA.homeCommunityId,
                    repositoryUniqueId: '9.9.9',
                    documentUniqueId: '1.2.3.1.1',
                  },
                ],
              },
            ],
          },
        ],
        transferSyntaxUids: ['1.2.840.10008.1.2.1'],
      }),
    );
    expect(rad.registryStatus).toBe('Failure');
    const rgr = await retrieveCall(
      `${rg.url}/iti39`,
      Action.ITI39,
      encodeRetrieveDocumentSetRequest([
        {
          homeCommunityId: refB.homeCommunityId,
          repositoryUniqueId: `127.0.0.1:${trapPort}`,
          documentUniqueId: '1.2.3',
        },
      ]),
    );
    expect(rgr.registryStatus).toBe('Failure');
    expect(trapHits).toBe(0);
  });

  it('wsa:To naming another address is not followed', async () => {
    const a = await soapCall(`${ig.url}/iti18`, Action.ITI18, query(), {
      extraHeaders: `<wsa:To>http://127.0.0.1:${trapPort}/iti18</wsa:To>`,
    });
    // A second To is a duplicate header (the client writes one): refused, or served — never followed.
    expect([200, 400]).toContain(a.status);
    expect(trapHits).toBe(0);
  });
});

describe('Outbound', () => {
  it('refuses a URL the directory does not name; `permit` opens exactly one URL', async () => {
    const allowed = `http://127.0.0.1:${recvPort}/replies`;
    const o = new Outbound({}, (u) => u === allowed);
    const post = (url: string, permit?: (u: string) => boolean) =>
      o.post({
        endpoint: { url, timeoutMs: 2000, maxConcurrent: 1, maxResponseBytes: 1024 },
        contentType: 'text/plain',
        body: 'x',
        signal: AbortSignal.timeout(5000),
        headersTimeoutMs: 2000,
        permit,
      });
    const trapUrl = `http://127.0.0.1:${trapPort}/x`;
    await expect(post(trapUrl)).rejects.toMatchObject({ kind: 'egress-denied' });
    await expect(post(trapUrl, (u) => u === `${trapUrl}/other`)).rejects.toBeInstanceOf(CallFailure);
    const ok = await post(allowed);
    expect(ok.status).toBe(202);
    ok.body.resume();
    await o.close();
    expect(trapHits).toBe(0);
  });
});
