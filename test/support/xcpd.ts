/**
 * Test support for patient discovery: a recording tap in front of a real endpoint (to schema-check
 * every HL7 V3 message on the wire), scripted ITI-55 peers (to play misbehaving Responding
 * Gateways), and small readers of query answers and metrics.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request, type Dispatcher } from 'undici';
import {
  Action,
  decodeAdhocQueryResponse,
  decodeEnvelope,
  documentEntryFacts,
  encodeEnvelope,
  encodeFindDocumentsRequest,
  type PersonName,
  type RegistryError,
  type Status,
} from '@xcai/shared';
import { soapCall } from './client';

/** An HL7 V3 person name with one family and one given name, `use` e.g. IDE (kanji) or SYL (kana). */
export const personName = (family: string, given: string, use?: string): PersonName => ({
  family: [family],
  given: [given],
  prefix: [],
  suffix: [],
  use: use ? [use] : [],
});

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface Tap {
  url: string;
  /** Request and response bodies that went through, in order. */
  exchanges: { request: string; response: string }[];
  close(): Promise<void>;
}

/** Forwards every POST to `target` unchanged and records both bodies. */
export async function tap(target: string): Promise<Tap> {
  const exchanges: Tap['exchanges'] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const reqBody = await body(req);
      const up = await request(target, {
        method: 'POST',
        headers: { 'content-type': String(req.headers['content-type'] ?? 'application/soap+xml') },
        body: reqBody,
      });
      const resBody = Buffer.from(await up.body.arrayBuffer());
      exchanges.push({ request: reqBody.toString('utf8'), response: resBody.toString('utf8') });
      res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? '') });
      res.end(resBody);
    })().catch(() => res.destroy());
  });
  return { ...(await listen(server)), exchanges };
}

export interface ScriptedPeer {
  url: string;
  /** Requests received, by wsa:Action. */
  received: { action: string; body: string }[];
  close(): Promise<void>;
}

/**
 * A Responding Gateway that answers by script: `answer(action, requestXml)` returns the SOAP body to
 * send (its RelatesTo is set), a raw HTTP body (`{ raw }`), or 'hang' to never answer.
 */
export async function scriptedPeer(
  answer: (action: string, request: string) => string | { raw: string } | 'hang',
): Promise<ScriptedPeer> {
  const received: ScriptedPeer['received'] = [];
  const hanging: (() => void)[] = [];
  const server = createServer((req, res) => {
    void body(req).then((b) => {
      const text = b.toString('utf8');
      const env = decodeEnvelope(text, {}, true);
      const action = env.wsa.action ?? '';
      received.push({ action, body: text });
      const a = answer(action, text);
      if (a === 'hang') {
        hanging.push(() => res.destroy());
        return;
      }
      res.writeHead(200, { 'content-type': 'application/soap+xml; charset=UTF-8' });
      if (typeof a !== 'string') return res.end(a.raw);
      const responseAction = action === Action.ITI55 ? Action.ITI55Response : Action.ITI38Response;
      res.end(
        encodeEnvelope({ action: responseAction, relatesTo: env.wsa.messageId, body: a, request: false }),
      );
    });
  });
  const l = await listen(server);
  return {
    url: l.url,
    received,
    close: async () => {
      hanging.forEach((h) => h());
      await l.close();
    },
  };
}

async function listen(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface FoundDocuments {
  status: Status;
  errors: RegistryError[];
  /** homeCommunityId of every DocumentEntry. */
  homes: string[];
  /** The patient id of every DocumentEntry. */
  patients: string[];
}

/** ITI-18 FindDocuments at an initiating gateway, as a consumer sends it. */
export async function findDocuments(
  iti18: string,
  patient: string,
  o: { dispatcher?: Dispatcher } = {},
): Promise<FoundDocuments> {
  const a = await soapCall(iti18, Action.ITI18, encodeFindDocumentsRequest(patient), o);
  if (a.status !== 200) throw new Error(`ITI-18 answered HTTP ${a.status}: ${a.xml.slice(0, 300)}`);
  const r = decodeAdhocQueryResponse(a.envelope.doc, a.envelope.payload);
  const facts = r.objects.map(documentEntryFacts).filter((f) => f !== undefined);
  return {
    status: r.status,
    errors: r.errors,
    homes: facts.map((f) => f.home ?? '?'),
    patients: facts.map((f) => f.patientId ?? '?'),
  };
}

/** xcai_subrequests_total summed over outcomes for one transaction (and community, if given). */
export function subrequests(metricsText: string, transaction: string, community?: string): number {
  let n = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith('xcai_subrequests_total{')) continue;
    if (!line.includes(`transaction="${transaction}"`)) continue;
    if (community && !line.includes(`community="${community}"`)) continue;
    n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}
