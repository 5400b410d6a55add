// Redis client for hot shared state (replay nonces, quotas, caches); every key is prefixed
// so that runs and nodes sharing one Redis never collide.
import { Redis } from 'ioredis'
import type { Config } from '../config/index.js'

export function createRedis(cfg: Config['redis']): Redis {
  const redis = new Redis(cfg.url, {
    keyPrefix: cfg.prefix,
    enableAutoPipelining: true,
    // Fail fast while Redis is down: callers fail closed with a clear code instead of queueing.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    lazyConnect: true,
  })
  redis.on('error', () => {})
  return redis
}
