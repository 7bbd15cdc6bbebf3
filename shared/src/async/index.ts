export { createAsyncSupport, type AsyncSupport, type AsyncSupportOptions, type AsyncStatus } from './support';
export { matchReplyTo, parseReplyToPattern, replyToPatternsFor } from './reply-to';
export { MemoryCorrelationStore, type CorrelationStore, type PendingRecord, type ClaimState } from './store';
export { asyncKeys, RedisCorrelationStore } from './redis-store';
export {
  connectRedis,
  closeRedis,
  describeRedis,
  scanTargets,
  whenReady,
  type Redis,
  type RedisSettings,
} from '../redis/client';
export { redisSettingsFromEnv, RedisSettingsError } from '../redis/settings';
export { handoverKey, signHandover, checkHandover, HANDOVER_HEADER, HANDOVER_RELATES_TO } from './handover';
export { ASYNC_RESPONSE_PATH, HANDOVER_PATH, senderMismatch } from './receiver';
export { messageKey } from './used';
export { deliver, lazyMtomBody } from './deliver';
