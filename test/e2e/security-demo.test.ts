/**
 * The demo federation (`npm start`) enforces the identity mapping: its responding gateways serve
 * community A's gateway certificate (gw-a) and refuse every other certificate of the same demo CA —
 * for ITI-38 and for patient discovery (ITI-55) alike —, and its initiating gateway refuses a
 * consumer without the consumer certificate.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import {
  Action,
  encodeEnvelope,
  encodeFindDocumentsRequest,
  encodePatientQuery,
  newPatientQuery,
} from '@xcai/shared';
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
    // Patient discovery (ITI-55) at B is guarded the same way: it answers A's gateway only.
    const pdB = e.communities.find((c) => c.label === 'B')?.gateway.iti55 as string;
    const iti55 = encodeEnvelope({
      action: Action.ITI55,
      to: pdB,
      body: encodePatientQuery(
        newPatientQuery({
          sender: {
            id: { root: '1.3.6.1.4.1.21367.13.70.101' },
            organization: '1.3.6.1.4.1.21367.13.70.101',
          },
          receivers: [{ id: { root: '1.3.6.1.4.1.21367.13.70.102' } }],
          ids: [],
          demographics: {
            names: [{ family: ['山田'], given: ['太郎'], prefix: [], suffix: [], use: ['IDE'] }],
            birthTime: '19650312',
            addresses: [],
          },
        }),
      ),
      request: true,
    });
    expect(text(await postWith(as('gw-a'), pdB, iti55))).toMatch(
      /^200 [\s\S]*<typeCode code="AA"\/>[\s\S]*B-4711/,
    );
    for (const other of ['consumer', 'gw-c'])
      expect(text(await postWith(as(other), pdB, iti55))).toContain(
        'does not belong to a community of the directory',
      );
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
