import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import type { EngineHooks } from '../pipeline/engine';
import type { Gateway } from '../pipeline/transaction';
import { handoverKey } from './handover';
import { ASYNC_RESPONSE_PATH, mountReceiver } from './receiver';
import { closeRedis, connectRedis, whenReady, type Redis } from '../redis/client';
import { RedisCorrelationStore } from './redis-store';
import { servedHook } from './served';
import { MemoryCorrelationStore, type CorrelationStore } from './store';
import { AsyncCalls } from './used';

export interface AsyncSupportOptions {
  gateway: Gateway;
  role: 'initiating' | 'responding';
  /** A connected client to share (the gateway's); or a URL to connect to; neither: in-process store. */
  redis?: Redis;
  redisUrl?: string;
  keyPrefix?: string;
  /** Key material for authenticating hand-overs between replicas (XCAI_HANDOVER_SECRET, else the TLS key). */
  handoverSecret?: string;
  tlsKey?: Buffer | string;
  /** Where the other replicas reach this one (XCAI_INTERNAL_URL); default: the address bound. */
  internalUrl?: () => string;
  /** How long delivery of a served async response is retried (default 60 s). */
  deliveryWindowMs?: number;
  /** One delivery attempt's wait for the receiver's answer (default 30 s). */
  attemptTimeoutMs?: number;
  /** Correlation records outlive their deadline by this much (default 15 s). */
  graceMs?: number;
}

export interface AsyncStatus {
  store: 'redis' | 'memory';
  available: boolean;
  /** How long the store has been unreachable (0 when available). */
  unavailableMs: number;
  waiting: number;
  serving: number;
  handover: boolean;
}

export interface AsyncSupport {
  readonly hooks: EngineHooks;
  readonly store: CorrelationStore;
  readonly replica: string;
  /** Mounts /async-response (initiating side). */
  extend(app: Express): void;
  /** Publishes this replica for hand-overs; call once the server listens. */
  start(): Promise<void>;
  ready(): Promise<AsyncStatus>;
  close(): Promise<void>;
}

const HEARTBEAT_MS = 10_000;

/** The asynchronous web-service exchange (ITI TF-2 Appendix V) of one gateway process. */
export function createAsyncSupport(o: AsyncSupportOptions): AsyncSupport {
  const gw = o.gateway;
  const log = gw.log.child({ component: 'async' });
  const replica = randomBytes(8).toString('hex');
  const ownClient =
    !o.redis && o.redisUrl ? connectRedis(o.redisUrl, { keyPrefix: o.keyPrefix, log }) : undefined;
  const redis = o.redis ?? ownClient;
  const store: CorrelationStore = redis ? new RedisCorrelationStore(redis) : new MemoryCorrelationStore();
  const key = handoverKey({ secret: o.handoverSecret, tlsKey: o.tlsKey });
  const graceMs = o.graceMs ?? 15_000;
  const inflight = new Set<AbortController>();
  const calls = new AsyncCalls({
    gateway: gw,
    store,
    replica,
    replyTo: () => `${gw.publicUrl}${ASYNC_RESPONSE_PATH}`,
    graceMs,
    log,
  });
  const served = servedHook({
    gateway: gw,
    store,
    replica,
    deliveryWindowMs: o.deliveryWindowMs ?? 60_000,
    attemptTimeoutMs: o.attemptTimeoutMs ?? 30_000,
    graceMs,
    log,
    inflight,
  });
  let heartbeat: NodeJS.Timeout | undefined;
  const publish = async () => {
    const url = o.internalUrl?.();
    if (url && redis) await store.registerReplica(replica, url, 3 * HEARTBEAT_MS).catch(() => undefined);
  };
  if (redis && !key && o.role === 'initiating') {
    log.warn(
      'no XCAI_HANDOVER_SECRET and no TLS key: async responses that land on another replica cannot be handed over',
    );
  }

  return {
    store,
    replica,
    hooks: {
      served,
      exchange: o.role === 'initiating' ? (call, ctx, req) => calls.exchange(call, ctx, req) : undefined,
    },
    extend(app) {
      if (o.role === 'initiating')
        mountReceiver(app, { gateway: gw, store, calls, replica, key, graceMs, log });
    },
    async start() {
      if (!redis || o.role !== 'initiating') return;
      store.onReady(() => void publish());
      await whenReady(redis, 2_000);
      await publish();
      heartbeat = setInterval(() => void publish(), HEARTBEAT_MS);
      heartbeat.unref();
    },
    async ready() {
      return {
        store: store.kind,
        available: store.available(),
        unavailableMs: store.unavailableMs(),
        waiting: calls.waiters.size,
        serving: inflight.size,
        handover: !!key,
      };
    },
    async close() {
      clearInterval(heartbeat);
      for (const a of inflight) a.abort(new Error('gateway closing'));
      if (redis && o.role === 'initiating') await store.dropReplica(replica).catch(() => undefined);
      await store.close();
      if (ownClient) await closeRedis(ownClient);
    },
  };
}
