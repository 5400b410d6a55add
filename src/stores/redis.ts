// The one place Redis connections are made (docs/operations.md, "Scale-out: Redis"): a
// standalone server (TONGBAN_REDIS_URL), a Sentinel-watched master (TONGBAN_REDIS_SENTINELS +
// TONGBAN_REDIS_SENTINEL_NAME) or a Redis Cluster (TONGBAN_REDIS_CLUSTER_NODES). Every user —
// the app's client, pub/sub, BullMQ, the CLI — asks here, so the three topologies differ in
// this file and in the hash tags of multi-key scripts (slotTag), nowhere else.
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis'
import type { Config } from '../config/index.js'

/** A client of any topology: both classes expose the same commands. */
export type RedisClient = Redis | Cluster

export type RedisSettings = Config['redis']
export type RedisTopology = 'standalone' | 'sentinel' | 'cluster'

export interface HostPort {
  host: string
  port: number
}

/** `host:port,host:port` (IPv6 as `[::1]:26379`). Throws on anything else. */
export function parseHostPorts(list: string, what: string): HostPort[] {
  return list.split(',').map((s) => s.trim()).filter(Boolean).map((item) => {
    const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(item)
    const port = m ? Number(m[2]) : NaN
    if (!m || port < 1 || port > 65535) throw new Error(`${what}: expected host:port, got ${JSON.stringify(item)}`)
    return { host: m[1].replace(/^\[|\]$/g, ''), port }
  })
}

export function topologyOf(cfg: Pick<RedisSettings, 'sentinels' | 'clusterNodes'>): RedisTopology {
  if (cfg.clusterNodes) return 'cluster'
  if (cfg.sentinels) return 'sentinel'
  return 'standalone'
}

/**
 * Replicas a quota increment must reach before its queries are admitted (WAIT). Automatic:
 * 1 on Sentinel and Cluster (a failover promotes a replica: what it lacks was never
 * released), 0 on a standalone server.
 */
export function waitReplicasOf(cfg: Pick<RedisSettings, 'sentinels' | 'clusterNodes' | 'waitReplicas'>): number {
  return cfg.waitReplicas ?? (topologyOf(cfg) === 'standalone' ? 0 : 1)
}

/**
 * Wraps `s` in a hash tag on a Cluster, so that every key built with the same `s` lands in
 * one slot (a Lua script may touch only one slot). Elsewhere keys keep their names.
 */
export function slotTag(redis: { isCluster: boolean }, s: string): string {
  return redis.isCluster ? `{${s}}` : s
}

/** What a role asks of its connection, on top of the topology. */
export type ConnectionOptions = Omit<RedisOptions, 'host' | 'port' | 'path' | 'sentinels' | 'name'>

/**
 * A new connection (or, on a Cluster, a cluster client) of the configured topology. On
 * Sentinel it always follows the master the sentinels name; on a Cluster it follows the
 * slot map (MOVED/ASK, refreshes on failover).
 */
export function redisConnection(cfg: RedisSettings, opts: ConnectionOptions = {}): RedisClient {
  const topology = topologyOf(cfg)
  if (topology === 'cluster') {
    const { keyPrefix, enableOfflineQueue, enableAutoPipelining, lazyConnect, retryStrategy: _ignored, ...redisOptions } = opts
    const nodes: ClusterNode[] = parseHostPorts(cfg.clusterNodes!, 'TONGBAN_REDIS_CLUSTER_NODES')
    return new Cluster(nodes, {
      keyPrefix,
      enableOfflineQueue,
      enableAutoPipelining,
      lazyConnect,
      // A failover takes the cluster a few seconds: retry redirected commands meanwhile
      // (bounded by maxRetriesPerRequest of the role), and look for the new slot map soon.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      slotsRefreshTimeout: 2000,
      redisOptions,
    })
  }
  if (topology === 'sentinel') {
    return new Redis({
      ...opts,
      sentinels: parseHostPorts(cfg.sentinels!, 'TONGBAN_REDIS_SENTINELS'),
      name: cfg.sentinelName,
      role: 'master',
      sentinelRetryStrategy: (times: number) => Math.min(times * 100, 1000),
      // On each (re)connect: ask the sentinels, retry soon (a promotion takes seconds).
      retryStrategy: (times: number) => Math.min(times * 100, 1000),
    })
  }
  return new Redis(cfg.url, opts)
}

/** The app's client for hot shared state (replay nonces, quotas, caches), every key prefixed
 *  so that runs and nodes sharing one Redis never collide. */
export function createRedis(cfg: RedisSettings): RedisClient {
  const redis = redisConnection(cfg, {
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

/**
 * BullMQ's connection: options where BullMQ can make the client itself (standalone,
 * Sentinel), a Cluster client where it cannot (BullMQ then shares it, and the caller ends it).
 */
export function bullConnection(cfg: RedisSettings, opts: ConnectionOptions): RedisOptions | Cluster {
  const topology = topologyOf(cfg)
  if (topology === 'cluster') return redisConnection(cfg, opts) as Cluster
  if (topology === 'sentinel') {
    return {
      ...opts,
      sentinels: parseHostPorts(cfg.sentinels!, 'TONGBAN_REDIS_SENTINELS'),
      name: cfg.sentinelName,
      role: 'master',
      sentinelRetryStrategy: (times: number) => Math.min(times * 100, 1000),
    }
  }
  return { ...opts, url: cfg.url } as RedisOptions
}

/**
 * BullMQ's key prefix: `<prefix>bull`, hash-tagged on a Cluster (`{<prefix>bull}`) so that
 * every key of every queue of the node is in one slot, as BullMQ's scripts require.
 */
export function bullPrefix(cfg: RedisSettings): string {
  const p = `${cfg.prefix}bull`
  return topologyOf(cfg) === 'cluster' ? `{${p}}` : p
}

/** How many replicas a write must reach before it counts (WAIT), and for how long to wait. */
export interface Replication {
  replicas: number
  timeoutMs: number
}

export function replicationOf(cfg: RedisSettings): Replication {
  return { replicas: waitReplicasOf(cfg), timeoutMs: cfg.waitTimeoutMs }
}

/** The write was made on the master but not acknowledged by enough replicas in time. */
export class NotReplicatedError extends Error {
  constructor(readonly acked: number, readonly wanted: number) {
    super(`Redis: the write reached ${acked} of ${wanted} replicas in time`)
    this.name = 'NotReplicatedError'
  }
}

/**
 * Sends the command(s) `write` adds to a pipeline, then `WAIT <replicas> <timeout>` on the
 * same connection (on a Cluster: the same node, the pipeline's one slot), and resolves with
 * the first command's reply once enough replicas have the write. Otherwise it rejects
 * (NotReplicatedError): a caller that fails closed then never acts on a write that a
 * failover could lose. WAIT blocks its connection: give this a connection of its own.
 */
export async function writeReplicated<T>(redis: RedisClient, r: Replication, write: (p: ReturnType<RedisClient['pipeline']>) => void): Promise<T> {
  const p = redis.pipeline()
  write(p)
  p.call('WAIT', r.replicas, r.timeoutMs)
  const res = await p.exec()
  if (!res || res.length < 2) throw new Error('Redis: the pipeline was discarded')
  const [first, wait] = [res[0], res[res.length - 1]]
  if (first[0]) throw first[0]
  if (wait[0]) throw wait[0]
  const acked = Number(wait[1])
  if (acked < r.replicas) throw new NotReplicatedError(acked, r.replicas)
  return first[1] as T
}
