/**
 * The demo federation (`npm start`) enforces the identity mapping: its responding gateways serve
 * community A's gateway certificate (gw-a) and refuse every other certificate of the same demo CA,
 * and its initiating gateway refuses a consumer without the consumer certificate.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { Action, encodeEnvelope, encodeFindDocumentsRequest } from '@xcai/shared';
import { postWith } from '../support/certs';
import { startDemo } from '../support/demo';

it('the demo responding gateways accept gw-a only; the initiating gateway wants the consumer certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xcai-demo-security-'));
  const demo = await startDemo(dir);
  try {
    const e = demo.endpoints;
    const certs = join(e.runDir, 'certs');
    const as = (name?: string) =>
      new Agent({
        connect: {
          ca: readFileSync(e.tls.ca),
          ...(name
            ? {
                cert: readFileSync(join(certs, `${name}.crt`)),
                key: readFileSync(join(certs, `${name}.key`)),
              }
            : {}),
        },
      });
    const body = encodeFindDocumentsRequest(e.patients[0].id);
    const rgB = e.communities.find((c) => c.label === 'B')?.gateway.iti38 as string;
    const iti38 = encodeEnvelope({ action: Action.ITI38, to: rgB, body, request: true });
    const text = (r: Awaited<ReturnType<typeof postWith>>) =>
      'error' in r ? r.error.message : `${r.status} ${r.text}`;

    expect(text(await postWith(as('gw-a'), rgB, iti38))).toMatch(/^200 /);
    for (const other of ['consumer', 'gw-c', 'gw-b']) {
      expect(text(await postWith(as(other), rgB, iti38))).toContain(
        'does not belong to a community of the directory',
      );
    }
    const iti18 = encodeEnvelope({ action: Action.ITI18, to: e.consumer.iti18, body, request: true });
    expect(text(await postWith(as('consumer'), e.consumer.iti18, iti18))).toMatch(/^200 /);
    expect(text(await postWith(as(), e.consumer.iti18, iti18))).toContain(
      'a client certificate of a consumer of this gateway is required',
    );
  } finally {
    expect(await demo.stop()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
