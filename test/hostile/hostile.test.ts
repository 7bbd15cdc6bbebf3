/**
 * Runs every case of the hostile-input corpus (test/hostile/cases, see README.md) against both
 * gateways, each in its own process as deployed. Request cases are sent to the gateway; response
 * cases are what a scripted peer (a community's gateway, a repository, an imaging document source)
 * answers the gateway while it serves a good request. Every case must end in a clear SOAP fault or
 * RegistryError (as the case says); afterwards both processes must still be up, still answer a good
 * request, and have stayed within a generous memory bound.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Action,
  encodeEnvelope,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveImagingDocumentSetRequest,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { demoSeeds, spawnCommunity, type CommunityProcess } from '../support/federation';
import { peakRss, spawnGateway, type GatewayProcess } from '../support/processes';
import {
  caseHeaders,
  check,
  expand,
  loadCorpus,
  post,
  type Answer,
  type EndpointKind,
  type HostileCase,
  type Placeholders,
  type Target,
} from './corpus';

const corpus = loadCorpus();
/** Peak resident memory a gateway may reach over the whole corpus (a leak or an unbounded buffer shows as far more). */
const MAX_RSS = 512 * 1024 * 1024;

/** The scripted peer: community P at the IG, repository / IDS at the RG. */
const PEER_HOME = 'urn:oid:1.3.6.1.4.1.21367.13.70.299';
const PEER_REPO = '1.3.6.1.4.1.21367.13.70.299.1';
const PEER_IDS = '1.3.6.1.4.1.21367.13.70.299.2';
const PEER_DOC = '1.3.6.1.4.1.21367.13.70.299.3.1';
const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';

let refA: CommunityProcess;
let refB: CommunityProcess;
let ig: GatewayProcess;
let rg: GatewayProcess;
let peer: Server;
let peerUrl: string;
/** What the peer answers next (response cases). */
let scripted: HostileCase | undefined;

const PATHS: Record<Target, Record<EndpointKind, [string, string, string]>> = {
  ig: {
    query: ['/iti18', Action.ITI18, Action.ITI38Response],
    retrieve: ['/iti43', Action.ITI43, Action.ITI39Response],
    imaging: ['/rad69', Action.RAD69, Action.RAD75Response],
    'async-response': ['/async-response', Action.ITI38Response, ''],
  },
  rg: {
    query: ['/iti38', Action.ITI38, Action.ITI18Response],
    retrieve: ['/iti39', Action.ITI39, Action.ITI43Response],
    imaging: ['/rad75', Action.RAD75, Action.RAD69Response],
    'async-response': ['/async-response', Action.ITI38Response, ''],
  },
};

function startPeer(): Promise<void> {
  peer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const c = scripted;
      if (!c) return void res.writeHead(503).end();
      const text = Buffer.concat(chunks).toString('latin1');
      const target: Target = req.url?.startsWith('/p/') ? 'ig' : 'rg';
      const p: Placeholders = {
        ...placeholders(target, c.endpoint),
        action: PATHS[target][c.endpoint][2],
        home: target === 'ig' ? PEER_HOME : refB.homeCommunityId,
        relatesTo: /<(?:\w+:)?MessageID[^>]*>([^<]+)</.exec(text)?.[1] ?? '',
        repo: /<(?:\w+:)?RepositoryUniqueId>([^<]+)</.exec(text)?.[1] ?? PEER_REPO,
        doc: /<(?:\w+:)?DocumentUniqueId>([^<]+)</.exec(text)?.[1] ?? PEER_DOC,
      };
      const headers = caseHeaders(c, p);
      res.writeHead(200, headers);
      res.end(expand(c.body, p, c.crlf));
    });
  });
  return new Promise((r) =>
    peer.listen(0, '127.0.0.1', () => {
      peerUrl = `http://127.0.0.1:${(peer.address() as AddressInfo).port}`;
      r();
    }),
  );
}

beforeAll(async () => {
  await startPeer();
  const seeds = await demoSeeds();
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  // Short enough that the truncated-body cases end quickly; rates high enough for the whole corpus.
  const inboundLimits = { bodyIdleTimeoutMs: 1000, requestsPerSecond: 1000, burst: 1000 };
  rg = await spawnGateway('responding', {
    homeCommunityId: refB.homeCommunityId,
    name: 'B',
    local: {
      registry: { url: refB.registry },
      repositories: [
        { repositoryUniqueId: refB.repositoryUniqueId, url: refB.repository },
        { repositoryUniqueId: PEER_REPO, url: `${peerUrl}/r/repository`, timeoutMs: 5000 },
      ],
      imagingDocumentSources: [
        { repositoryUniqueId: refB.idsRepositoryUniqueId, url: refB.ids },
        { repositoryUniqueId: PEER_IDS, url: `${peerUrl}/r/ids`, timeoutMs: 5000 },
      ],
    },
    communities: [{ homeCommunityId: refA.homeCommunityId, name: 'A' }],
    inboundLimits,
  });
  ig = await spawnGateway('initiating', {
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
        endpoints: { iti38: `${rg.url}/iti38`, iti39: `${rg.url}/iti39`, rad75: `${rg.url}/rad75` },
      },
      {
        homeCommunityId: PEER_HOME,
        name: 'P (scripted peer)',
        endpoints: {
          iti38: { url: `${peerUrl}/p/iti38`, timeoutMs: 5000 },
          iti39: { url: `${peerUrl}/p/iti39`, timeoutMs: 5000 },
          rad75: { url: `${peerUrl}/p/rad75`, timeoutMs: 5000 },
        },
      },
    ],
    inboundLimits,
  });
}, 120_000);

afterAll(async () => {
  await ig?.stop();
  await rg?.stop();
  await refA?.stop();
  await refB?.stop();
  await new Promise<void>((r) => (peer ? peer.close(() => r()) : r()));
});

function placeholders(t: Target, kind: EndpointKind): Placeholders {
  const g = t === 'ig' ? ig : rg;
  const ref = t === 'ig' ? refA : refB;
  const [path, action] = PATHS[t][kind];
  return {
    action,
    to: `${g.url}${path}`,
    home: ref.homeCommunityId,
    repo: ref.repositoryUniqueId,
    idsRepo: ref.idsRepositoryUniqueId,
    patient: PATIENT.replace(/&/g, '&amp;'),
    relatesTo: '',
    doc: PEER_DOC,
  };
}

/** The good request a response case is answered to (it reaches the scripted peer). */
function goodRequest(t: Target, kind: EndpointKind): Buffer {
  const p = placeholders(t, kind);
  const doc = {
    homeCommunityId: t === 'ig' ? PEER_HOME : refB.homeCommunityId,
    repositoryUniqueId: t === 'ig' ? PEER_REPO : kind === 'imaging' ? PEER_IDS : PEER_REPO,
    documentUniqueId: PEER_DOC,
  };
  const body =
    kind === 'query'
      ? encodeFindDocumentsRequest(PATIENT)
      : kind === 'retrieve'
        ? encodeRetrieveDocumentSetRequest([doc])
        : encodeRetrieveImagingDocumentSetRequest({
            studies: [
              {
                studyInstanceUid: '1.3.6.1.4.1.21367.13.70.299.4',
                series: [{ seriesInstanceUid: '1.3.6.1.4.1.21367.13.70.299.5', documents: [doc] }],
              },
            ],
            transferSyntaxUids: ['1.2.840.10008.1.2.1'],
          });
  return Buffer.from(encodeEnvelope({ action: p.action, to: p.to, body, request: true }));
}

async function run(c: HostileCase, t: Target): Promise<Answer> {
  const p = placeholders(t, c.endpoint);
  if (c.direction === 'response') {
    scripted = c;
    try {
      return await post(
        p.to,
        { 'content-type': 'application/soap+xml; charset=UTF-8' },
        goodRequest(t, c.endpoint),
      );
    } finally {
      scripted = undefined;
    }
  }
  const headers = caseHeaders(c, p);
  return post(p.to, headers, expand(c.body, p, c.crlf));
}

describe.each(['ig', 'rg'] as const)('hostile input at the %s', (t) => {
  const cases = corpus.filter((c) => c.targets.includes(t));

  it.each(cases.map((c) => [`${c.direction} ${c.name}`, c] as const))('%s', async (_name, c) => {
    check(c, await run(c, t));
  });

  it('is still up, still serves, and stayed within its memory bound', async () => {
    const g = t === 'ig' ? ig : rg;
    expect(g.proc.exitCode).toBeNull();
    const p = placeholders(t, 'query');
    const a = await post(
      p.to,
      { 'content-type': 'application/soap+xml; charset=UTF-8' },
      goodRequest(t, 'query'),
    );
    expect(a.status).toBe(200);
    expect(a.fault).toBeUndefined();
    expect(a.objects).toBeGreaterThan(0);
    expect(peakRss(g.proc.pid as number)).toBeLessThan(MAX_RSS);
  });
});

it('the corpus covers every class of hostile input named in issue 6', () => {
  const names = corpus.map((c) => c.name).join(' ');
  for (const topic of [
    'xxe-external',
    'xxe-parameter',
    'entity-bomb',
    'deep-nesting',
    'huge-attribute',
    'huge-text',
    'invalid-utf8',
    'mtom-truncated',
    'mtom-misbounded',
    'content-id-missing',
    'content-id-duplicate',
    'content-id-dangling',
    'content-type',
    'huge-headers',
    'home-not-urn-oid',
    'injection',
    'relates-to',
  ])
    expect(names).toContain(topic);
  expect(corpus.some((c) => c.direction === 'response')).toBe(true);
});
