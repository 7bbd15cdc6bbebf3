/**
 * No PHI in the logs at info level (R12): runs queries that succeed, fail, name unknown patients,
 * meet a community that is down and one whose fault quotes the patient, and checks that no patient
 * id, patient name or document id appears in what the gateways logged.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Action,
  createLogger,
  encodeAdhocQueryRequest,
  encodeEnvelope,
  encodeFault,
  SoapFault,
  StoredQuery,
  type RunningGateway,
  encodeFindDocumentsRequest,
} from '@xcai/shared';
import { soapCall } from '../support/client';
import {
  demoSeeds,
  directory,
  spawnCommunity,
  startIG,
  startRG,
  type CommunityProcess,
} from '../support/federation';
import { readManifest } from '../../services/reference-community/src/server';
import type { SeedManifest } from '../../services/reference-community/src/seed/types';

const PATIENT_1 = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const PATIENT_3 = 'JP1003^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const UNKNOWN = 'NOBODY77^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';

const lines: string[] = [];
const logger = (service: string) => createLogger({ service }, 'info', (l) => lines.push(l));
let manifests: Record<'B' | 'C', SeedManifest>;
let refB: CommunityProcess, refC: CommunityProcess;
let rgB: RunningGateway, rgC: RunningGateway, ig: RunningGateway;
let faulty: Server;

function findDocuments(patient: string): string {
  return encodeFindDocumentsRequest(patient);
}

beforeAll(async () => {
  const seeds = await demoSeeds();
  const A = readManifest(seeds.A).homeCommunityId;
  manifests = { B: readManifest(seeds.B), C: readManifest(seeds.C) };
  [refB, refC] = await Promise.all([spawnCommunity([seeds.B]), spawnCommunity([seeds.C])]);
  const rgDir = (k: 'B' | 'C', registry: string, policy: string) =>
    directory({
      homeCommunityId: manifests[k].homeCommunityId,
      name: k,
      local: { registry: { url: registry } },
      communities: [{ homeCommunityId: A, name: 'A' }],
      policy: { unknownPatient: policy },
    });
  rgB = await startRG(rgDir('B', refB.registry, 'XDSUnknownPatientId'), { log: logger('rg-b') });
  rgC = await startRG(rgDir('C', refC.registry, 'empty-success'), { log: logger('rg-c') });
  // A community whose faults quote the patient id back (peers do this).
  faulty = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = /<wsa:MessageID>([^<]+)</.exec(Buffer.concat(chunks).toString())?.[1];
      res.writeHead(500, { 'content-type': 'application/soap+xml' });
      res.end(encodeFault(SoapFault.receiver(`patient ${PATIENT_1} (山田 太郎) could not be resolved`), id));
    });
  });
  await new Promise<void>((r) => faulty.listen(0, '127.0.0.1', r));
  const dead = 'http://127.0.0.1:9/iti38';
  const community = (name: string, home: string, url: string) => ({
    homeCommunityId: home,
    name,
    endpoints: { iti38: { url, timeoutMs: 5000 } },
  });
  ig = await startIG(
    directory({
      homeCommunityId: A,
      name: 'A',
      deadlineMs: 10_000,
      communities: [
        community('B', manifests.B.homeCommunityId, `${rgB.url}/iti38`),
        community('C', manifests.C.homeCommunityId, `${rgC.url}/iti38`),
        community('D', 'urn:oid:1.3.6.1.4.1.21367.13.70.195', dead),
        community(
          'F',
          'urn:oid:1.3.6.1.4.1.21367.13.70.194',
          `http://127.0.0.1:${(faulty.address() as AddressInfo).port}/iti38`,
        ),
      ],
    }),
    { log: logger('ig') },
  );
}, 60_000);

afterAll(async () => {
  await ig.close();
  await rgB.close();
  await rgC.close();
  await new Promise<void>((r) => faulty.close(() => r()));
  await refB.stop();
  await refC.stop();
});

it('logs no patient id, patient name or document id at info level', async () => {
  const iti18 = (body: string) => soapCall(`${ig.url}/iti18`, Action.ITI18, body);
  expect((await iti18(findDocuments(PATIENT_1))).status).toBe(200);
  expect((await iti18(findDocuments(PATIENT_3))).status).toBe(200);
  expect((await iti18(findDocuments(UNKNOWN))).status).toBe(200);
  const doc = manifests.B.documentEntries.find((d) => d.patientId === PATIENT_1);
  expect(doc).toBeDefined();
  await iti18(
    encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      home: manifests.B.homeCommunityId,
      params: { $XDSDocumentEntryUniqueId: `('${doc?.uniqueId}')` },
    }),
  );
  await iti18(
    encodeAdhocQueryRequest({
      queryId: StoredQuery.GetDocuments,
      home: 'urn:oid:1.2.3.4.5',
      params: { $XDSDocumentEntryUniqueId: `('${doc?.uniqueId}')` },
    }),
  );
  // Refused requests: wrong action, unreadable body.
  await soapCall(`${ig.url}/iti18`, Action.ITI38, findDocuments(PATIENT_1));
  await soapCall(`${ig.url}/iti18`, Action.ITI18, '', {
    raw: `<x>${PATIENT_1}</x`,
    contentType: 'application/soap+xml',
  }).catch(() => undefined);
  await soapCall(`${rgB.url}/iti38`, Action.ITI38, findDocuments(UNKNOWN));
  await soapCall(`${ig.url}/iti18`, Action.ITI18, '', {
    raw: encodeEnvelope({
      action: Action.ITI18,
      to: `${ig.url}/iti18`,
      body: `<bad>${PATIENT_3}</bad>`,
      request: true,
    }),
  });

  const text = lines.join('\n');
  expect(lines.length).toBeGreaterThan(5);
  expect(text).toMatch(/"msg":"sub-request failed"/);
  expect(text).toMatch(/"msg":"request refused"/);
  expect(
    lines.every((l) => ['info', 'warn', 'error'].includes((JSON.parse(l) as { level: string }).level)),
  ).toBe(true);

  const forbidden = new Set<string>(['JP1001', 'JP1003', 'NOBODY77', '山田', '太郎']);
  for (const m of [manifests.B, manifests.C]) {
    for (const p of m.patients) {
      forbidden.add(p.id);
      forbidden.add(p.sourcePatientId);
      forbidden.add(p.displayName);
      for (const part of p.dicomName.split(/[=^]/)) if (part.length >= 2) forbidden.add(part);
    }
    for (const d of m.documentEntries) {
      forbidden.add(d.uniqueId);
      forbidden.add(d.entryUUID);
    }
  }
  const leaks = [...forbidden].filter((s) => text.includes(s));
  expect(leaks).toEqual([]);
});
