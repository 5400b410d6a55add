// Single-use assertions (client assertions at the token endpoint, node-to-node links): each
// jti is remembered in Redis until the assertion expires. Redis may run without persistence,
// so a restart forgets every jti: the replay memory is bound to an epoch, a marker key holding
// the time the memory began. An assertion issued before the epoch (less a small allowance
// for clock skew) may have been used before the restart, so it is refused.
//
// The marker is read, created if absent, and compared in the same Lua script that sets the
// jti: no request can slip between a restart and the node noticing it. A marker lost any
// other way (FLUSHALL, eviction) starts a new epoch too, which only refuses more.
//
// With replicas (Sentinel, Cluster) a claim counts only once a replica has it (WAIT,
// writeReplicated): a failover must not forget a jti that was accepted. On a Cluster the
// marker and every jti share one slot (`{replay}` hash tag), so the script stays in one slot
// and a master that loses its data loses the epoch with the jtis it guarded.
import { writeReplicated, type RedisClient, type Replication } from '../stores/redis.js'

/** Assertions issued this long before the epoch are still taken (clock skew between signer and gateway). */
export const EPOCH_ALLOWANCE_MS = 5_000
export const EPOCH_KEY = 'replay:epoch'

export type ReplayVerdict = 'fresh' | 'replayed' | 'before-epoch'

// KEYS: marker, jti key. ARGV: now (ms), issued at (ms), jti ttl (ms), allowance (ms).
// Returns { verdict, epoch, 1 if this call started the epoch }.
const CLAIM = `
local epoch = redis.call('GET', KEYS[1])
local created = 0
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = ARGV[1]
  created = 1
end
if tonumber(ARGV[2]) < tonumber(epoch) - tonumber(ARGV[4]) then return { 'before-epoch', epoch, created } end
if redis.call('SET', KEYS[2], '1', 'PX', ARGV[3], 'NX') then return { 'fresh', epoch, created } end
return { 'replayed', epoch, created }
`

type WithClaim = RedisClient & { replayClaim(marker: string, key: string, now: number, iat: number, ttl: number, allowance: number): Promise<[ReplayVerdict, string, number]> }

export interface ReplayStoreOptions {
  log?: { warn(obj: object, msg?: string): void }
  now?: () => number
  allowanceMs?: number
  /** The replicas a claim must reach before it counts (none: at once). */
  replication?: Replication
}

/** The marker's key on this client: `replay:epoch`, on a Cluster `{replay}:epoch`. */
const epochKeyOf = (redis: { isCluster: boolean }) => (redis.isCluster ? '{replay}:epoch' : EPOCH_KEY)
/** A jti's key in the marker's slot on a Cluster; unchanged elsewhere. */
const claimKeyOf = (redis: { isCluster: boolean }, key: string) => (redis.isCluster ? `{replay}:${key}` : key)

export class ReplayStore {
  /** The start of the replay memory (ms) as last seen; null until known. */
  epoch: number | null = null
  private readonly redis: WithClaim
  private readonly now: () => number
  private readonly allowanceMs: number

  constructor(redis: RedisClient, private readonly opts: ReplayStoreOptions = {}) {
    if (!('replayClaim' in redis)) redis.defineCommand('replayClaim', { numberOfKeys: 2, lua: CLAIM })
    this.redis = redis as WithClaim
    this.now = opts.now ?? Date.now
    this.allowanceMs = opts.allowanceMs ?? EPOCH_ALLOWANCE_MS
    // At start and on every reconnect: learn the epoch, or start one, so that it is close
    // to the moment Redis came back rather than to the first assertion after it.
    redis.on('ready', () => void this.touch().catch(() => {}))
    if (redis.status === 'ready') void this.touch().catch(() => {})
  }

  /** Starts the epoch if Redis has none; returns it. */
  async touch(): Promise<number> {
    const t = this.now()
    const marker = epochKeyOf(this.redis)
    const set = await this.redis.set(marker, String(t), 'NX')
    if (set === 'OK') this.started(t)
    else this.epoch = Number(await this.redis.get(marker)) || t
    return this.epoch!
  }

  /**
   * Remembers `key` for ttlMs unless already known. issuedAtMs: the earliest the assertion
   * can have been first presented (its iat). Rejects when Redis is unreachable: callers fail closed.
   */
  async claim(key: string, issuedAtMs: number, ttlMs: number): Promise<ReplayVerdict> {
    const t = this.now()
    const args = [epochKeyOf(this.redis), claimKeyOf(this.redis, key), t, Math.floor(issuedAtMs), Math.max(1000, Math.ceil(ttlMs)), this.allowanceMs] as const
    const r = this.opts.replication
    const [verdict, epoch, created] = r && r.replicas > 0
      ? await writeReplicated<[ReplayVerdict, string, number]>(this.redis, r, (p) => void (p as unknown as WithClaim).replayClaim(...args))
      : await this.redis.replayClaim(...args)
    if (created === 1) this.started(Number(epoch))
    else this.epoch = Number(epoch)
    return verdict
  }

  private started(t: number): void {
    if (this.epoch !== null && this.epoch !== t) {
      this.opts.log?.warn({ previousEpoch: new Date(this.epoch).toISOString(), epoch: new Date(t).toISOString() },
        'replay store started anew (Redis lost its data): assertions issued before it are refused')
    }
    this.epoch = t
  }
}
