import type { Directory } from '../directory/types';
import { PATIENT_IDENTITY_DEFAULTS } from '../directory/patient-identity';
import type { Redis } from '../redis/client';
import type { Logger } from '../util/log';
import { MemoryCorrelationCache, type CorrelationCache } from './cache';
import { correlationKeys, RedisCorrelationCache } from './redis-cache';

/**
 * The correlation cache of an Initiating Gateway: in Redis when there is one and a key to seal the
 * entries with (XCAI_HANDOVER_SECRET or the TLS key), else in this process. Undefined when no
 * community of the directory uses XCPD.
 */
export function correlationCache(o: {
  directory: Directory;
  redis?: Redis;
  secret?: string;
  tlsKey?: Buffer | string;
  log: Logger;
}): CorrelationCache | undefined {
  if (!o.directory.communities.some((c) => c.patientIdentity?.mode === 'xcpd')) return undefined;
  const settings = o.directory.patientIdentity ?? PATIENT_IDENTITY_DEFAULTS;
  const memory = () => new MemoryCorrelationCache(settings.maxCachedCorrelations);
  if (!o.redis) return memory();
  const keys = correlationKeys({ secret: o.secret, tlsKey: o.tlsKey });
  if (!keys) {
    o.log.warn(
      'no XCAI_HANDOVER_SECRET and no TLS key: XCPD correlations are cached in this process only, not shared in Redis',
    );
    return memory();
  }
  return new RedisCorrelationCache(o.redis, keys, o.log.child({ component: 'correlations' }));
}
