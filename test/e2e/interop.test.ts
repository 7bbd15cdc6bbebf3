/**
 * Interoperability with independent SOAP stacks: each endpoint publishes a WSDL with its address;
 * node-soap (npm `soap`) and python-zeep build requests from those WSDLs and read our answers.
 * Also: what the initiating gateway sends on the retrieve path validates against the IHE schemas.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as soap from 'soap';
import { request } from 'undici';
import {
  Action,
  decodeAdhocQueryResponse,
  encodeEnvelope,
  encodeRetrieveDocumentSetRequest,
  encodeRetrieveDocumentSetResponse,
  encodeRetrieveImagingDocumentSetRequest,
  MtomWriter,
  newMessageId,
  NS,
  parseXml,
  readSoapMessage,
  type RunningGateway,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { retrieveCall } from '../support/client';
import {
  demoSeeds,
  igDirectoryFor,
  remoteCommunity,
  rgDirectoryFor,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { deIncludeXop, xsdErrors } from '../support/xsd';

const run = promisify(execFile);
const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const findDocuments = encodeFindDocumentsRequest(PATIENT);

let refA: CommunityProcess, refB: CommunityProcess;
let ig: RunningGateway, rg: RunningGateway;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const seeds = await demoSeeds();
  [refA, refB] = await Promise.all([spawnCommunity([seeds.A]), spawnCommunity([seeds.B])]);
  stops.push(refA.stop, refB.stop);
  rg = await startRG(rgDirectoryFor(refB, [{ homeCommunityId: refA.homeCommunityId, name: 'A' }]));
  ig = await startIG(igDirectoryFor(refA, [remoteCommunity('B', refB.homeCommunityId, rg.url)]));
  stops.push(rg.close, ig.close);
}, 60_000);

afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

describe('WSDL', () => {
  it.each([
    ['initiating', '/iti18', Action.ITI18, Action.ITI18Response],
    ['initiating', '/iti43', Action.ITI43, Action.ITI43Response],
    ['initiating', '/rad69', Action.RAD69, Action.RAD69Response],
    ['responding', '/iti38', Action.ITI38, Action.ITI38Response],
    ['responding', '/iti39', Action.ITI39, Action.ITI39Response],
    ['responding', '/rad75', Action.RAD75, Action.RAD75Response],
  ])(
    '%s gateway %s publishes a SOAP 1.2 WSDL with its address and actions',
    async (side, path, action, responseAction) => {
      const base = side === 'initiating' ? ig.url : rg.url;
      const res = await request(`${base}${path}?wsdl`);
      expect(res.statusCode).toBe(200);
      const doc = parseXml(await res.body.text());
      const WSDL = 'http://schemas.xmlsoap.org/wsdl/';
      const address = doc.root.descendants('http://schemas.xmlsoap.org/wsdl/soap12/', 'address')[0];
      expect(address.attr('location')).toBe(`${base}${path}`);
      const op = doc.root.child(WSDL, 'portType')?.child(WSDL, 'operation');
      const actionOf = (el: string) =>
        op?.child(WSDL, el)?.attr('Action', 'http://www.w3.org/2007/05/addressing/metadata');
      expect([actionOf('input'), actionOf('output')]).toEqual([action, responseAction]);
    },
  );
});

describe('node-soap as an independent client', () => {
  async function call(wsdlUrl: string, method: string, action: string, body: string) {
    const client = await soap.createClientAsync(wsdlUrl, { forceSoap12Headers: true });
    const wsa = 'xmlns:wsa="http://www.w3.org/2005/08/addressing"';
    client.addSoapHeader(`<wsa:Action ${wsa}>${action}</wsa:Action>`);
    client.addSoapHeader(`<wsa:MessageID ${wsa}>${newMessageId()}</wsa:MessageID>`);
    const [, raw] = (await (client as unknown as Record<string, (a: unknown) => Promise<[unknown, string]>>)[
      `${method}Async`
    ]({
      _xml: body,
    })) as [unknown, string];
    return raw;
  }

  it('ITI-18 at the initiating gateway', async () => {
    const raw = await call(
      `${ig.url}/iti18?wsdl`,
      'DocumentRegistry_RegistryStoredQuery',
      Action.ITI18,
      findDocuments,
    );
    const doc = parseXml(raw);
    const res = decodeAdhocQueryResponse(doc, doc.root.descendants(NS.query, 'AdhocQueryResponse')[0]);
    expect(res.status).toBe('Success');
    expect(new Set(res.objects.map((o) => o.attr('home')))).toEqual(
      new Set([refA.homeCommunityId, refB.homeCommunityId]),
    );
  });

  it('ITI-38 at the responding gateway', async () => {
    const raw = await call(
      `${rg.url}/iti38?wsdl`,
      'RespondingGateway_CrossGatewayQuery',
      Action.ITI38,
      findDocuments,
    );
    const doc = parseXml(raw);
    const res = decodeAdhocQueryResponse(doc, doc.root.descendants(NS.query, 'AdhocQueryResponse')[0]);
    expect(res.status).toBe('Success');
    expect(res.objects.every((o) => o.attr('home') === refB.homeCommunityId)).toBe(true);
  });
});

describe('python-zeep as an independent client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zeep-'));
  const script = join(__dirname, '../support/zeep_client.py');

  async function zeep(
    wsdlUrl: string,
    operation: string,
    body: string,
  ): Promise<{ sent: string; received: string }> {
    const file = join(dir, `${operation}.xml`);
    writeFileSync(file, body);
    const { stdout } = await run('/usr/bin/python3', [script, wsdlUrl, operation, file], {
      maxBuffer: 64 << 20,
    });
    const [sent, received] = stdout.split('\f');
    return { sent: sent.trim(), received: received.trim() };
  }

  it.each([
    ['initiating', '/iti18', 'DocumentRegistry_RegistryStoredQuery', Action.ITI18Response],
    ['responding', '/iti38', 'RespondingGateway_CrossGatewayQuery', Action.ITI38Response],
  ])(
    '%s gateway %s: zeep builds the request from our WSDL and reads the answer',
    async (side, path, op, responseAction) => {
      const base = side === 'initiating' ? ig.url : rg.url;
      const { sent, received } = await zeep(`${base}${path}?wsdl`, op, findDocuments);
      expect(sent).toContain('http://www.w3.org/2005/08/addressing');
      const doc = parseXml(received);
      const wsaAction = doc.root.descendants(NS.wsa, 'Action')[0]?.trimmedText();
      expect(wsaAction).toBe(responseAction);
      const res = decodeAdhocQueryResponse(doc, doc.root.descendants(NS.query, 'AdhocQueryResponse')[0]);
      expect(res.status).toBe('Success');
      expect(res.objects.length).toBeGreaterThan(0);
    },
  );
});

describe('retrieve requests the initiating gateway sends validate against the IHE schemas', () => {
  let capture: Server;
  const received: string[] = [];
  let url = '';
  beforeAll(async () => {
    capture = createServer((req, res) => {
      void (async () => {
        const msg = await readSoapMessage(req, req.headers['content-type'], {
          maxRootBytes: 1 << 20,
          maxPartHeaderBytes: 1 << 14,
          maxParts: 4,
          maxTotalBytes: 1 << 21,
        });
        const xml = msg.envelope.toString('utf8');
        received.push(xml);
        const id = /<wsa:MessageID>([^<]+)</.exec(xml)?.[1];
        const action = xml.includes(Action.RAD75) ? Action.RAD75Response : Action.ITI39Response;
        const w = new MtomWriter(res, { action });
        res.writeHead(200, { 'content-type': w.contentType });
        await w.writeRoot(
          encodeEnvelope({
            action,
            relatesTo: id,
            body: encodeRetrieveDocumentSetResponse('Success', [], []),
            request: false,
          }),
        );
        await w.end();
        res.end();
      })();
    });
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(capture.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => capture.close(() => r())));

  it('ITI-39 and RAD-75 (MTOM requests)', async () => {
    const home = 'urn:oid:1.3.6.1.4.1.21367.13.70.150';
    const g = await startIG(
      igDirectoryFor(refA, [
        { homeCommunityId: home, name: 'X', endpoints: { iti39: `${url}/iti39`, rad75: `${url}/rad75` } },
      ]),
    );
    try {
      await retrieveCall(
        `${g.url}/iti43`,
        Action.ITI43,
        encodeRetrieveDocumentSetRequest([
          { homeCommunityId: home, repositoryUniqueId: '1.2.3', documentUniqueId: '1.2.3.4' },
        ]),
      );
      await retrieveCall(
        `${g.url}/rad69`,
        Action.RAD69,
        encodeRetrieveImagingDocumentSetRequest({
          studies: [
            {
              studyInstanceUid: '1.2.3',
              series: [
                {
                  seriesInstanceUid: '1.2.3.4',
                  documents: [
                    { homeCommunityId: home, repositoryUniqueId: '1.2.9', documentUniqueId: '1.2.3.4.5' },
                  ],
                },
              ],
            },
          ],
          transferSyntaxUids: ['1.2.840.10008.1.2.1'],
        }),
      );
      expect(received).toHaveLength(2);
      expect(received[0]).toContain(Action.ITI39);
      expect(received[1]).toContain(Action.RAD75);
      expect(xsdErrors(received.map(deIncludeXop))).toBe('');
    } finally {
      await g.close();
    }
  });
});
