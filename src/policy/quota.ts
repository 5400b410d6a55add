// Daily quotas of grants, decided atomically in Redis: a Lua script is the only writer of
// a grant's counter, so replicas never race, and it checks the grant's revocation marker at
// the moment it runs. Queries of one grant that arrive in the same turn of the event loop go
// together in one call (INCRBY n, the excess refused and taken back), sent at the end of that
// turn: each is still decided by Redis after it arrived, exactly and against the marker, with
// fewer round trips under concurrency and no query waiting for another's round trip. Calls
// of one grant may overlap: Redis runs them in the order they were sent, so the first to ask
// are still admitted first. (The per-system rate limit is rate-lease.ts.)
import type { Redis } from 'ioredis'

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

export const revokedKey = (grantId: string) => `grant:${grantId}:revoked`

export const quotaKey = (grantId: string, day: string) => `quota:${grantId}:${day}`

interface Asking {
  dailyQuota: number
  resolve(a: Admission): void
  reject(e: Error): void
}

export class QuotaAdmissions {
  /** Per grant: the queries of this turn of the event loop, not yet sent. */
  private readonly gathering = new Map<string, Asking[]>()

  constructor(private readonly redis: Redis) {
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
      call = this.redis.tongbanAdmit(revokedKey(grantId), quotaKey(grantId, chinaDay(Date.now())), asking.length, quota, 2 * 86400)
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
export async function usedToday(redis: Redis, grantIds: string[], now = Date.now()): Promise<number[]> {
  if (grantIds.length === 0) return []
  const day = chinaDay(now)
  const values = await redis.mget(...grantIds.map((id) => quotaKey(id, day)))
  return values.map((v) => (v === null ? 0 : Math.max(0, Number.parseInt(v, 10) || 0)))
}
