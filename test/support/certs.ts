import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import { ROOT } from './federation';

/** A throwaway CA with one certificate per name, made by deploy/certs/make-certs.sh. */
export interface TestPki {
  dir: string;
  ca: string;
  cert(name: string): string;
  key(name: string): string;
  /** TLS settings of a gateway presenting `name` (ServiceSettings.tls). */
  settings(
    name: string,
    clientAuth: 'required' | 'optional',
    extraCa?: string[],
  ): {
    cert: string;
    key: string;
    ca: string[];
    clientAuth: 'required' | 'optional';
  };
  /** An undici dispatcher presenting `name` (or no certificate) and trusting this CA (plus extraCa). */
  client(
    name?: string,
    o?: { extraCa?: string[]; tls?: Record<string, unknown>; localAddress?: string },
  ): Agent;
  remove(): void;
}

/** Names may carry SANs as make-certs.sh takes them: `gw-b:DNS:gw-b,IP:127.0.0.1`. */
export function makePki(names: string[], label = 'pki'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), `xcai-${label}-`));
  execFileSync(join(ROOT, 'deploy/certs/make-certs.sh'), [dir, ...names], {
    stdio: 'pipe',
    env: { ...process.env, CA_NAME: `xcai test ${label}` },
  });
  const ca = join(dir, 'ca.crt');
  const pki: TestPki = {
    dir,
    ca,
    cert: (n) => join(dir, `${n}.crt`),
    key: (n) => join(dir, `${n}.key`),
    settings: (n, clientAuth, extraCa = []) => ({
      cert: pki.cert(n),
      key: pki.key(n),
      ca: [ca, ...extraCa],
      clientAuth,
    }),
    client: (n, o = {}) =>
      new Agent({
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        connect: {
          ca: [readFileSync(ca), ...(o.extraCa ?? []).map((f) => readFileSync(f))],
          ...(n ? { cert: readFileSync(pki.cert(n)), key: readFileSync(pki.key(n)) } : {}),
          ...o.tls,
        },
      }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  return pki;
}

/** POSTs a body with a dispatcher; resolves with status and text (or the connection error). */
export async function postWith(
  dispatcher: Dispatcher,
  url: string,
  body: string | Buffer,
  contentType = 'application/soap+xml; charset=UTF-8',
  o: { timeoutMs?: number } = {},
): Promise<{ status: number; text: string } | { error: Error }> {
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': contentType },
      body,
      ...(o.timeoutMs ? { signal: AbortSignal.timeout(o.timeoutMs) } : {}),
    });
    return { status: res.statusCode, text: await res.body.text() };
  } catch (e) {
    return { error: e as Error };
  }
}
