/**
 * A recording HTTP proxy: put between a gateway and the peer it calls (in the directory, in place of the
 * peer's URL), it keeps every request it forwards — what NIST's simulators record so that
 * ValidateRad75Request / ValidateRad69Request can check what a gateway sent on — and streams the
 * answer back untouched. Requests are read whole (they are small); answers are not buffered.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import type { SoapEnvelope } from '@xcai/shared';
import { readMessage } from './async-peer';

export interface RecordedRequest {
  path: string;
  contentType: string;
  /** The SOAP envelope (the root part of an MTOM request). */
  xml: string;
  envelope: SoapEnvelope;
}

export interface Recorder {
  /** Base URL to put in a directory instead of the upstream's (paths are kept). */
  url: string;
  requests: RecordedRequest[];
  clear(): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Starts a recording proxy to `upstream` (a base URL, e.g. http://127.0.0.1:1234). */
export async function startRecorder(upstream: string): Promise<Recorder> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const contentType = String(req.headers['content-type'] ?? '');
      const msg = await readMessage(Readable.from([body]), contentType);
      requests.push({ path: req.url ?? '', contentType, xml: msg.xml, envelope: msg.envelope });
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const up = await request(`${upstream}${req.url ?? ''}`, { method: 'POST', headers, body });
      const back: Record<string, string> = {};
      for (const [k, v] of Object.entries(up.headers))
        if (v !== undefined && !HOP_BY_HOP.has(k)) back[k] = Array.isArray(v) ? v.join(', ') : v;
      res.writeHead(up.statusCode, back);
      await pipeline(up.body, res);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    clear: () => void requests.splice(0),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
