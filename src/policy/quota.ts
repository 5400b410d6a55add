// Daily quotas of grants, decided atomically in Redis: a Lua script is the only writer of
// a grant's counter, so replicas never race, and it checks the grant's revocation marker at
// the moment it runs. Queries of one grant that arrive in the same turn of the event loop go
// together in one call (INCRBY n, the excess refused and taken back), sent at the end of that
// turn: each is still decided by Redis after it arrived, exactly and against the marker, with
// fewer round trips under concurrency and no query waiting for another's round trip. Calls
// of one grant may overlap: Redis runs them in the order they were sent, so the first to ask
// are still admitted first. (The per-system rate limit is rate-lease.ts.)
//
// With replicas (Sentinel, Cluster) a failover promotes a replica that may lack the last
// increments the old master acknowledged; queries admitted on them would then be counted
// nowhere, and the quota could be exceeded. So there the script's reply is acted on only
// after `WAIT` says the replica has the increment (writeReplicated); otherwise the queries
// fail closed (QUOTA_UNAVAILABLE). They were counted, so a quota is under-used, never
// exceeded. Keys are hash-tagged by grant on a Cluster (one slot per script call).
import { slotTag, writeReplicated, type RedisClient, type Replication } from '../stores/redis.js'

// KEYS: 1 revocation marker of the grant, 2 the grant's counter for today. ARGV: 1 queries
// asking, 2 daily quota, 3 counter TTL (s).
// Returns the number admitted (the first ones asking; 0..n), or -2 if the grant is revoked.
const SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -2 end
local n = tonumber(ARGV[1])
local q = redis.call('INCRBY', KEYS[2], n)
if q == n then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
local over = q - tonumber(ARGV[2])
if over > 0 then
  local refused = math.min(n, over)
  redis.call('DECRBY', KEYS[2], refused)
  return n - refused
end
return n
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    tongbanAdmit(revoked: string, quota: string, asking: number, dailyQuota: number, ttl: number): Promise<number>
  }
}

export type Admission = { ok: true } | { ok: false; why: 'quota' | 'revoked' }

const CHINA_OFFSET_MS = 8 * 3600_000

/** Today in China (UTC+8): quotas are per calendar day where the departments work. */
export const chinaDay = (now: number) => new Date(now + CHINA_OFFSET_MS).toISOString().slice(0, 10)

const STANDALONE = { isCluster: false }

/** `grant:<id>:revoked` (on a Cluster `grant:{<id>}:revoked`, in the slot of the grant's counters). */
export const revokedKey = (grantId: string, on: { isCluster: boolean } = STANDALONE) => `grant:${slotTag(on, grantId)}:revoked`

/** `quota:<id>:<day>` (on a Cluster `quota:{<id>}:<day>`). */
export const quotaKey = (grantId: string, day: string, on: { isCluster: boolean } = STANDALONE) => `quota:${slotTag(on, grantId)}:${day}`

interface Asking {
  dailyQuota: number
  resolve(a: Admission): void
  reject(e: Error): void
}

export class QuotaAdmissions {
  /** Per grant: the queries of this turn of the event loop, not yet sent. */
  private readonly gathering = new Map<string, Asking[]>()

  /** replication: the replicas an increment must reach before it admits (none: act at once). */
  constructor(private readonly redis: RedisClient, private readonly replication: Replication = { replicas: 0, timeoutMs: 0 }) {
    redis.defineCommand('tongbanAdmit', { numberOfKeys: 2, lua: SCRIPT })
  }

  /** One query under `grantId` now; rejects when Redis cannot be reached. */
  admit(grantId: string, dailyQuota: number): Promise<Admission> {
    return new Promise((resolve, reject) => {
      const queue = this.gathering.get(grantId)
      if (queue) queue.push({ dailyQuota, resolve, reject })
      else {
        this.gathering.set(grantId, [{ dailyQuota, resolve, reject }])
        // After the I/O callbacks of this turn: what they asked for goes in one call.
        setImmediate(() => this.ask(grantId))
      }
    })
  }

  private ask(grantId: string): void {
    const asking = this.gathering.get(grantId)!
    this.gathering.delete(grantId)
    // The grant as last loaded: a narrowed quota applies to everyone asking now.
    const quota = asking[asking.length - 1].dailyQuota
    let call: Promise<number>
    try {
      const keys = [revokedKey(grantId, this.redis), quotaKey(grantId, chinaDay(Date.now()), this.redis)] as const
      call = this.replication.replicas > 0
        ? writeReplicated<number>(this.redis, this.replication, (p) => void p.tongbanAdmit(keys[0], keys[1], asking.length, quota, 2 * 86400))
        : this.redis.tongbanAdmit(keys[0], keys[1], asking.length, quota, 2 * 86400)
    } catch (e) {
      call = Promise.reject(e)
    }
    call.then(
      (admitted) => {
        for (let i = 0; i < asking.length; i++) {
          asking[i].resolve(admitted === -2 ? { ok: false, why: 'revoked' } : i < admitted ? { ok: true } : { ok: false, why: 'quota' })
        }
      },
      (e: Error) => {
        for (const a of asking) a.reject(e)
      },
    )
  }
}

/** The use of each grant's quota today, read without consuming (0: none yet). */
export async function usedToday(redis: RedisClient, grantIds: string[], now = Date.now()): Promise<number[]> {
  if (grantIds.length === 0) return []
  const day = chinaDay(now)
  // On a Cluster each grant's counter is in its own slot: one GET each (pipelined per node).
  const values = redis.isCluster
    ? await Promise.all(grantIds.map((id) => redis.get(quotaKey(id, day, redis))))
    : await redis.mget(...grantIds.map((id) => quotaKey(id, day)))
  return values.map((v) => (v === null ? 0 : Math.max(0, Number.parseInt(v, 10) || 0)))
}
