/**
 * The hostile-input corpus: one `cases/*.case` file per case (format in README.md), expanded into
 * the bytes to send to a gateway and the outcome to expect.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { decodeEnvelope, NS, readSoapMessage, type XmlElement } from '@xcai/shared';

export type Target = 'ig' | 'rg';
export type EndpointKind = 'query' | 'retrieve' | 'imaging' | 'async-response';
/** request: the case is what a client sends the gateway; response: what a peer answers the gateway. */
export type Direction = 'request' | 'response';
export type Expectation =
  'fault' | 'registry-error' | 'fault-or-registry-error' | 'empty-or-error' | 'soap-answer';

export interface HostileCase {
  file: string;
  name: string;
  description: string;
  targets: Target[];
  endpoint: EndpointKind;
  direction: Direction;
  contentType?: string;
  headers: [string, string][];
  expect: Expectation;
  statuses?: number[];
  match?: RegExp;
  notMatch?: RegExp;
  /** A regex the whole answer (envelope text) must match, e.g. a header of a fault. */
  answerMatch?: RegExp;
  crlf: boolean;
  body: string;
}

/** What the placeholders expand to for one gateway. */
export interface Placeholders {
  action: string;
  to: string;
  home: string;
  repo: string;
  idsRepo: string;
  patient: string;
  /** Response cases: the MessageID of the request the peer answers. */
  relatesTo: string;
  /** Response cases: the DocumentUniqueId the gateway asked for. */
  doc: string;
}

const KEYS = new Set([
  'target',
  'endpoint',
  'direction',
  'content-type',
  'header',
  'expect',
  'status',
  'match',
  'not-match',
  'answer-match',
  'crlf',
]);
const EXPECTATIONS = new Set([
  'fault',
  'registry-error',
  'fault-or-registry-error',
  'empty-or-error',
  'soap-answer',
]);

export const CASES_DIR = join(__dirname, 'cases');

export function loadCorpus(dir = CASES_DIR): HostileCase[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.case'))
    .sort()
    .map((f) => parseCase(f, readFileSync(join(dir, f), 'utf8')));
}

export function parseCase(file: string, text: string): HostileCase {
  const sep = text.indexOf('\n---\n');
  if (sep < 0) throw new Error(`${file}: no "---" line between the header and the body`);
  const head = text.slice(0, sep).split('\n');
  let body = text.slice(sep + 5);
  if (body.endsWith('\n')) body = body.slice(0, -1);
  const c: HostileCase = {
    file,
    name: file.replace(/\.case$/, ''),
    description: '',
    targets: ['ig', 'rg'],
    endpoint: 'query',
    direction: 'request',
    headers: [],
    expect: 'fault',
    crlf: false,
    body,
  };
  const notes: string[] = [];
  for (const line of head) {
    if (line.startsWith('#')) {
      notes.push(line.replace(/^#\s?/, ''));
      continue;
    }
    if (!line.trim()) continue;
    const m = /^([a-z-]+):\s*(.*)$/.exec(line);
    if (!m || !KEYS.has(m[1])) throw new Error(`${file}: unknown header line "${line}"`);
    const [, k, v] = m;
    switch (k) {
      case 'target':
        if (v === 'both') c.targets = ['ig', 'rg'];
        else if (v === 'ig' || v === 'rg') c.targets = [v];
        else throw new Error(`${file}: target must be ig, rg or both`);
        break;
      case 'endpoint':
        if (!['query', 'retrieve', 'imaging', 'async-response'].includes(v))
          throw new Error(`${file}: endpoint must be query, retrieve, imaging or async-response`);
        c.endpoint = v as EndpointKind;
        break;
      case 'direction':
        if (v !== 'request' && v !== 'response')
          throw new Error(`${file}: direction must be request or response`);
        c.direction = v;
        break;
      case 'content-type':
        c.contentType = v;
        break;
      case 'header': {
        const h = /^([^:]+):\s?(.*)$/.exec(v);
        if (!h) throw new Error(`${file}: header must be "Name: value"`);
        c.headers.push([h[1], h[2]]);
        break;
      }
      case 'expect':
        if (!EXPECTATIONS.has(v)) throw new Error(`${file}: unknown expectation ${v}`);
        c.expect = v as Expectation;
        break;
      case 'status':
        c.statuses = v.split(',').map((s) => Number(s.trim()));
        break;
      case 'match':
        c.match = new RegExp(v, 'i');
        break;
      case 'not-match':
        c.notMatch = new RegExp(v, 'i');
        break;
      case 'answer-match':
        c.answerMatch = new RegExp(v, 'i');
        break;
      case 'crlf':
        c.crlf = v === 'true';
        break;
    }
  }
  if (c.endpoint === 'async-response' && (c.targets.includes('rg') || c.direction === 'response'))
    throw new Error(`${file}: the async-response endpoint takes requests at the initiating gateway only`);
  if (c.direction === 'response' && c.endpoint === 'query' && c.targets.includes('rg'))
    throw new Error(
      `${file}: a responding gateway queries its own registry; hostile query answers: target ig`,
    );
  c.description = notes.join(' ');
  return c;
}

const PLACEHOLDER =
  /\{\{(repeat (\d+) ([\s\S]*?)|hex ([0-9a-fA-F ]+)|action|to|messageId|home|repo|idsRepo|patient|relatesTo|doc)\}\}/g;

/** The text with its placeholders expanded, as bytes (`{{hex …}}` may make it invalid UTF-8). */
export function expand(text: string, p: Placeholders, crlf = false): Buffer {
  const src = crlf ? text.replace(/\r?\n/g, '\r\n') : text;
  const out: Buffer[] = [];
  let last = 0;
  for (const m of src.matchAll(PLACEHOLDER)) {
    out.push(Buffer.from(src.slice(last, m.index), 'utf8'));
    last = (m.index ?? 0) + m[0].length;
    const key = m[1];
    if (m[2] !== undefined) out.push(Buffer.from(m[3].repeat(Number(m[2])), 'utf8'));
    else if (m[4] !== undefined) out.push(Buffer.from(m[4].replace(/\s+/g, ''), 'hex'));
    else if (key === 'messageId') out.push(Buffer.from(`urn:uuid:${crypto.randomUUID()}`));
    else out.push(Buffer.from(p[key as keyof Placeholders], 'utf8'));
  }
  out.push(Buffer.from(src.slice(last), 'utf8'));
  return Buffer.concat(out);
}

/** The HTTP headers of a case, expanded (`contentType: (none)` sends none). */
export function caseHeaders(c: HostileCase, p: Placeholders): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': c.contentType
      ? expand(c.contentType, p).toString('latin1')
      : 'application/soap+xml; charset=UTF-8',
  };
  for (const [k, v] of c.headers) headers[k.toLowerCase()] = expand(v, p).toString('latin1');
  if (c.contentType === '(none)') delete headers['content-type'];
  return headers;
}

/** What a gateway answered a case, as far as the verdict needs it. */
export interface Answer {
  status: number;
  text: string;
  fault?: string;
  registryErrors: number;
  objects: number;
}

function descendants(el: XmlElement, ns: string, local: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.is(ns, local)) out.push(c);
    descendants(c, ns, local, out);
  }
  return out;
}

/** POSTs a case (or a good request) and reads the answer, with generous hang detectors. */
export async function post(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
  dispatcher?: Dispatcher,
): Promise<Answer> {
  const res = await request(url, {
    method: 'POST',
    headers,
    body,
    dispatcher,
    headersTimeout: 60_000, // hang detectors
    bodyTimeout: 60_000,
  });
  const ct = String(res.headers['content-type'] ?? '');
  const raw = Buffer.from(await res.body.arrayBuffer());
  let text = raw.toString('utf8');
  if (ct.startsWith('multipart/related')) {
    const msg = await readSoapMessage(Readable.from([raw]), ct, {
      maxRootBytes: 1 << 26,
      maxPartHeaderBytes: 1 << 14,
      maxParts: 100_000,
      maxTotalBytes: 1 << 28,
    });
    await msg.attachments.discard();
    text = msg.envelope.toString('utf8');
  }
  const answer: Answer = { status: res.statusCode, text, registryErrors: 0, objects: 0 };
  const env = decodeEnvelope(
    text,
    { maxBytes: 1 << 26, maxTextLength: 1 << 26, maxElements: 5_000_000 },
    false,
  );
  if (env.payload.is(NS.soap, 'Fault')) {
    answer.fault = env.payload.child(NS.soap, 'Reason')?.child(NS.soap, 'Text')?.trimmedText() ?? '';
    return answer;
  }
  answer.registryErrors = descendants(env.payload, NS.rs, 'RegistryError').length;
  const list = descendants(env.payload, NS.rim, 'RegistryObjectList')[0];
  answer.objects =
    (list?.children.length ?? 0) + descendants(env.payload, NS.xdsb, 'DocumentResponse').length;
  return answer;
}

/** Throws unless the answer is what the case expects (a clear SOAP fault or RegistryError). */
export function check(c: HostileCase, a: Answer): void {
  const what = `${c.name} → HTTP ${a.status} ${a.fault !== undefined ? `fault "${a.fault}"` : `${a.registryErrors} RegistryError(s), ${a.objects} object(s)`}`;
  const isFault = a.fault !== undefined && a.fault.length > 0 && a.status >= 400;
  const isError = a.fault === undefined && a.status === 200 && a.registryErrors > 0;
  const ok = {
    fault: isFault,
    'registry-error': isError,
    'fault-or-registry-error': isFault || isError,
    'empty-or-error': isFault || isError || (a.status === 200 && a.fault === undefined && a.objects === 0),
    'soap-answer': isFault || (a.status === 200 && a.fault === undefined),
  }[c.expect];
  if (process.env.HOSTILE_VERBOSE) process.stdout.write(`${what}\n`);
  if (!ok) throw new Error(`expected ${c.expect}: ${what}`);
  if (c.statuses && !c.statuses.includes(a.status))
    throw new Error(`expected HTTP ${c.statuses.join('/')}: ${what}`);
  if (c.match && !c.match.test(a.fault ?? a.text)) throw new Error(`expected /${c.match.source}/: ${what}`);
  if (c.notMatch && c.notMatch.test(a.text))
    throw new Error(`must not contain /${c.notMatch.source}/: ${what}`);
  if (c.answerMatch && !c.answerMatch.test(a.text))
    throw new Error(`the answer must contain /${c.answerMatch.source}/: ${what}`);
}
