export { createAsyncSupport, type AsyncSupport, type AsyncSupportOptions, type AsyncStatus } from './support';
export { matchReplyTo, parseReplyToPattern, replyToPatternsFor } from './reply-to';
export { MemoryCorrelationStore, type CorrelationStore, type PendingRecord, type ClaimState } from './store';
export { RedisCorrelationStore } from './redis-store';
export { connectRedis, closeRedis, whenReady, type Redis } from '../redis/client';
export { handoverKey, signHandover, checkHandover, HANDOVER_HEADER, HANDOVER_RELATES_TO } from './handover';
export { ASYNC_RESPONSE_PATH, HANDOVER_PATH, senderMismatch } from './receiver';
export { messageKey } from './used';
export { deliver, lazyMtomBody } from './deliver';
