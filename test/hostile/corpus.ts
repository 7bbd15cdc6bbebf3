/**
 * The hostile-input corpus: one `cases/*.case` file per case (format in README.md), expanded into
 * the bytes to send to a gateway and the outcome to expect.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

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
