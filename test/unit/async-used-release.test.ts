/**
 * A sub-request asked asynchronously lets go of its answer when it ends: the abort listener on the
 * call's composite signal (whose closure holds the landed response and its parsed envelope) is
 * removed. It was not, and a composite signal lives as long as its longest-lived source: the soak
 * (issue 16) saw the initiating gateway's heap grow by ~40 KiB per request, its XmlElements held
 * through that listener.
 */
import { getEventListeners } from 'node:events';
import { Readable } from 'node:stream';
import { Action, encodeAdhocQueryResponse, encodeEnvelope, silentLogger } from '@xcai/shared';
import { AsyncCalls } from '@xcai/shared/src/async/used';
import { MemoryCorrelationStore } from '@xcai/shared/src/async/store';

it('removes its abort listener once the answer landed', async () => {
  const answer = encodeEnvelope({
    action: Action.ITI38Response,
    body: encodeAdhocQueryResponse('Success', [], []),
    request: false,
  });
  const gateway = {
    limits: { xml: {}, maxRetrieveRootBytes: 1 << 20 },
    outbound: {
      post: async () => ({
        status: 200,
        contentType: 'application/soap+xml; charset=UTF-8',
        body: Readable.from([Buffer.from(answer)]),
      }),
    },
  };
  const store = new MemoryCorrelationStore();
  const calls = new AsyncCalls({
    gateway: gateway as never,
    store,
    replica: 'r1',
    replyTo: () => 'https://127.0.0.1:1/async-response',
    graceMs: 1000,
    log: silentLogger,
  });
  const lifetime = new AbortController(); // e.g. the server's: outlives every request
  const composites: AbortSignal[] = [];
  const any = AbortSignal.any.bind(AbortSignal);
  const spy = jest.spyOn(AbortSignal, 'any').mockImplementation((s) => {
    const c = any(s);
    composites.push(c);
    return c;
  });
  const home = 'urn:oid:1.3.6.1.4.1.21367.13.70.331';
  const call = {
    action: Action.ITI38,
    responseAction: Action.ITI38Response,
    body: '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"/>',
    mtom: false,
    target: {
      kind: 'community',
      label: 'Y',
      community: { homeCommunityId: home, name: 'Y', async: true },
      endpoint: { url: 'https://127.0.0.1:1/iti38', timeoutMs: 5000, maxResponseBytes: 1 << 20 },
    },
  };
  const ctx = {
    gateway,
    signal: lifetime.signal,
    deadline: { cap: (ms: number) => ms },
    log: silentLogger,
  };
  const req = { messageId: `urn:uuid:${crypto.randomUUID()}` };
  try {
    const r = await calls.exchange(call as never, ctx as never, req as never);
    expect(r?.envelope.wsa.action).toBe(Action.ITI38Response);
  } finally {
    spy.mockRestore();
  }
  expect(composites.length).toBeGreaterThan(0);
  for (const c of composites) expect(getEventListeners(c, 'abort')).toHaveLength(0);
  lifetime.abort();
});
