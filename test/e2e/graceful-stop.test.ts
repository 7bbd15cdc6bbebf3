/**
 * A gateway stopped with SIGTERM (a rolling restart, `kubectl delete pod`) lets the requests under
 * way finish — within XCAI_SHUTDOWN_GRACE_MS — before it closes its connections, and takes no new
 * connection meanwhile. Found by the soak (issue 16): a large retrieve in flight at a restart was
 * cut off mid-stream.
 */
import { request } from 'undici';
import { Action, encodeEnvelope, encodeFindDocumentsRequest } from '@xcai/shared';
import { demoSeeds, spawnCommunity, type CommunityProcess } from '../support/federation';
import { spawnGateway, type GatewayProcess } from '../support/processes';

const PATIENT = 'JP1001^^^&1.3.6.1.4.1.21367.13.20.1000&ISO';
const HOME_IG = 'urn:oid:1.3.6.1.4.1.21367.13.70.901';

let ref: CommunityProcess;
let rg: GatewayProcess;

beforeAll(async () => {
  // The registry answers after 1.5 s: the query is still under way when the gateway is told to stop.
  ref = await spawnCommunity([(await demoSeeds()).A], { delayMs: 1_500 });
  rg = await spawnGateway(
    'responding',
    {
      homeCommunityId: ref.homeCommunityId,
      name: 'RG',
      local: { registry: { url: ref.registry, timeoutMs: 10_000 } },
      communities: [{ homeCommunityId: HOME_IG, name: 'IG' }],
    },
    { XCAI_SHUTDOWN_GRACE_MS: '8000' },
  );
}, 60_000);

afterAll(async () => {
  await rg?.stop();
  await ref?.stop();
});

it('answers the query under way when SIGTERM comes, then exits', async () => {
  const query = encodeEnvelope({
    action: Action.ITI38,
    body: encodeFindDocumentsRequest(PATIENT),
    request: true,
  });
  const inFlight = request(`${rg.url}/iti38`, {
    method: 'POST',
    headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
    body: query,
  }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }));
  await new Promise((r) => setTimeout(r, 400));
  const exited = new Promise<number | null>((resolve) => rg.proc.once('exit', (code) => resolve(code)));
  rg.proc.kill('SIGTERM');
  // No new connection is taken while it drains.
  await new Promise((r) => setTimeout(r, 200));
  await expect(
    request(`${rg.url}/iti38`, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml; charset=UTF-8' },
      body: query,
    }),
  ).rejects.toThrow();
  const done = await inFlight;
  expect(done.status).toBe(200);
  expect(done.text).toContain('ExtrinsicObject');
  expect(await exited).toBe(0);
}, 30_000);
