// Types of scripts/redis-topology.mjs (tests and drills import it).
export interface HostPort {
  host: string
  port: number
}

export interface TopologyOptions {
  /** Files go in a directory made inside this one, removed by stop(). */
  dir: string
  log?: (message: string) => void
}

export interface RedisSentinelTopology {
  masterName: string
  sentinels: HostPort[]
  masterPort: number
  replicaPort: number
  /** TONGBAN_REDIS_SENTINELS and TONGBAN_REDIS_SENTINEL_NAME for a gateway. */
  env: Record<string, string>
  /** The port of the master the sentinels name now (null: none answers). */
  currentMasterPort(): Promise<number | null>
  /** kill -9 of the current master; resolves with its port once it has exited. */
  killMaster(): Promise<number>
  /** Starts a killed server again, empty; resolves once the sentinels made it a replica in sync. */
  restartServer(port: number): Promise<void>
  /** Resolves with the promoted master's port. */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<number>
  stop(): Promise<void>
}

export interface RedisClusterTopology {
  nodes: HostPort[]
  /** TONGBAN_REDIS_CLUSTER_NODES for a gateway. */
  env: Record<string, string>
  stop(): Promise<void>
}

export function freePort(): Promise<number>
export function cli(port: number, ...args: string[]): Promise<string>
export function startRedisSentinel(o: TopologyOptions & { masterName?: string; downAfterMs?: number; failoverTimeoutMs?: number }): Promise<RedisSentinelTopology>
export function startRedisCluster(o: TopologyOptions & { masters?: number; replicas?: number; nodeTimeoutMs?: number }): Promise<RedisClusterTopology>
