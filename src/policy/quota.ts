// Daily quotas of grants, decided atomically in Redis: one Lua script, one round trip per
// query under a grant. No read-then-write race between replicas: the script is the only
// writer. (The per-system rate limit is rate-lease.ts.)
import type { Redis } from 'ioredis'

// KEYS: 1 revocation marker of the grant, 2 the grant's counter for today. ARGV: 1 daily
// quota, 2 counter TTL (s).
// Returns: n ≥ 1 allowed (n = today's count), -1 quota exhausted, -2 grant revoked.
const SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -2 end
local q = redis.call('INCR', KEYS[2])
if q == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
if q > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[2])
  return -1
end
return q
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    tongbanAdmit(revoked: string, quota: string, dailyQuota: number, ttl: number): Promise<number>
  }
}

export type Admission = { ok: true; count: number } | { ok: false; why: 'quota' | 'revoked' }

const CHINA_OFFSET_MS = 8 * 3600_000

/** Today in China (UTC+8): quotas are per calendar day where the departments work. */
export const chinaDay = (now: number) => new Date(now + CHINA_OFFSET_MS).toISOString().slice(0, 10)

export const revokedKey = (grantId: string) => `grant:${grantId}:revoked`

export function defineAdmission(redis: Redis): void {
  redis.defineCommand('tongbanAdmit', { numberOfKeys: 2, lua: SCRIPT })
}

export async function admit(redis: Redis, o: { grantId: string; dailyQuota: number; now?: number }): Promise<Admission> {
  const day = chinaDay(o.now ?? Date.now())
  const res = await redis.tongbanAdmit(revokedKey(o.grantId), `quota:${o.grantId}:${day}`, o.dailyQuota, 2 * 86400)
  if (res >= 0) return { ok: true, count: res }
  return { ok: false, why: res === -1 ? 'quota' : 'revoked' }
}
