/**
 * A misbehaving DICOMweb archive for the bridge's tests: an HTTP proxy in front of the real Orthanc
 * that, for WADO-RS retrievals of one instance (`target`), answers 503, relabels the answer's
 * Content-Type, cuts the body short, serves another instance (`other`) or answers too late; or
 * refuses every connection ('down'); or ('stall') sends the headers and the first bytes of every
 * instance and then nothing more until the bridge hangs up. Everything else passes through unchanged.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { request } from 'undici';

export interface FaultyArchive {
  url: string;
  mode: 'ok' | 'down' | '5xx' | 'content-type' | 'truncate' | 'other-sop' | 'slow' | 'stall';
  target?: string;
  other?: string;
  /** WADO-RS requests seen, and how many ended before their answer did (cancelled by the bridge). */
  requests: number;
  cancelled: number;
  /** WADO-RS requests under way (answer not finished, connection not closed). */
  open: number;
  close(): Promise<void>;
}

export async function startFaultyArchive(upstream: string): Promise<FaultyArchive> {
  const sockets = new Set<Socket>();
  const state: FaultyArchive = {
    url: '',
    mode: 'ok',
    requests: 0,
    cancelled: 0,
    open: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const base = new URL(upstream);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      let path = (req.url ?? '/').replace(/^\/dicom-web/, '');
      const isTarget = !!state.target && !path.includes('?') && path.endsWith(`/instances/${state.target}`);
      const retrieval = path.includes('/instances/') && !path.includes('?');
      if (retrieval) {
        state.requests++;
        state.open++;
      }
      res.once('close', () => {
        if (retrieval) state.open--;
        if (!res.writableFinished) state.cancelled++;
      });
      const stall = retrieval && state.mode === 'stall';
      if (isTarget && state.mode === '5xx') return void res.writeHead(503).end('archive overloaded');
      if (isTarget && state.mode === 'slow') await new Promise((r) => setTimeout(r, 4_000));
      if (isTarget && state.mode === 'other-sop' && state.other)
        path = path.replace(state.target!, state.other);
      const up = await request(`${base.origin}${base.pathname}${path}`, {
        method: 'GET',
        headers: {
          accept: String(req.headers.accept ?? '*/*'),
          authorization: String(req.headers.authorization ?? ''),
        },
      });
      let type = String(up.headers['content-type'] ?? '');
      if (isTarget && state.mode === 'content-type') type = 'application/octet-stream';
      res.writeHead(up.statusCode, { 'content-type': type });
      res.flushHeaders();
      let sent = 0;
      for await (const c of up.body) {
        const chunk = c as Buffer;
        if (((isTarget && state.mode === 'truncate') || stall) && sent + chunk.length > 2_000) {
          res.write(chunk.subarray(0, 2_000 - sent));
          if (stall) {
            up.body.destroy();
            if (!res.destroyed) await new Promise((r) => res.once('close', r));
            return;
          }
          await new Promise((r) => setTimeout(r, 100)); // headers and the first bytes are out
          res.destroy();
          return;
        }
        sent += chunk.length;
        if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      }
      res.end();
    })().catch(() => res.destroy());
  });
  server.on('connection', (s: Socket) => {
    if (state.mode === 'down') return void s.destroy();
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`;
  return state;
}
