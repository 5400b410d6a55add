// Quotas and rate limits, decided atomically in Redis: one Lua script, one round trip per
// query. No read-then-write race between replicas: the script is the only writer.
import type { Redis } from 'ioredis'

// KEYS: 1 revocation marker of the grant, 2 the grant's counter for today, 3 the system's
// counter for this second. ARGV: 1 daily quota (0 = no grant involved), 2 counter TTL (s),
// 3 rate limit per second (0 = none).
// Returns: n ≥ 0 allowed (n = today's count), -1 quota exhausted, -2 grant revoked, -3 rate limited.
const SCRIPT = `
if ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[1]) == 1 then return -2 end
if ARGV[3] ~= '0' then
  local r = redis.call('INCR', KEYS[3])
  if r == 1 then redis.call('PEXPIRE', KEYS[3], 2000) end
  if r > tonumber(ARGV[3]) then return -3 end
end
if ARGV[1] ~= '0' then
  local q = redis.call('INCR', KEYS[2])
  if q == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
  if q > tonumber(ARGV[1]) then
    redis.call('DECR', KEYS[2])
    return -1
  end
  return q
end
return 0
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    tongbanAdmit(revoked: string, quota: string, rate: string, dailyQuota: number, ttl: number, ratePerSecond: number): Promise<number>
  }
}

export type Admission = { ok: true; count: number } | { ok: false; why: 'quota' | 'revoked' | 'rate' }

const CHINA_OFFSET_MS = 8 * 3600_000

/** Today in China (UTC+8): quotas are per calendar day where the departments work. */
export const chinaDay = (now: number) => new Date(now + CHINA_OFFSET_MS).toISOString().slice(0, 10)

export const revokedKey = (grantId: string) => `grant:${grantId}:revoked`

export function defineAdmission(redis: Redis): void {
  redis.defineCommand('tongbanAdmit', { numberOfKeys: 3, lua: SCRIPT })
}

export async function admit(
  redis: Redis,
  o: { grantId?: string; dailyQuota?: number; system: string; ratePerSecond: number; now?: number },
): Promise<Admission> {
  const now = o.now ?? Date.now()
  const day = chinaDay(now)
  const second = Math.floor(now / 1000)
  const res = await redis.tongbanAdmit(
    revokedKey(o.grantId ?? '-'),
    `quota:${o.grantId ?? '-'}:${day}`,
    `rate:${o.system}:${second}`,
    o.grantId ? o.dailyQuota! : 0,
    2 * 86400,
    o.ratePerSecond,
  )
  if (res >= 0) return { ok: true, count: res }
  return { ok: false, why: res === -1 ? 'quota' : res === -2 ? 'revoked' : 'rate' }
}
