// The per-system rate limit without a Redis round trip per query. Each replica takes a
// system's tokens for the current second from Redis in blocks (leases) and spends them
// locally. Redis counts what was leased, so all replicas together never admit more than
// the limit in a second. A replica asks for a tenth of what the system used on it in the
// previous second, or a token for each query waiting, and never less than 1/64 of the limit:
// a system at a few queries a second then asks Redis once a second, not once a query (a
// query under a grant also makes the quota's round trip, and should make only that one).
// Redis gives at most a quarter of what is left of the second, so near the limit the blocks
// shrink to single tokens and little stays unused on one replica while another is refused.
// Queries that arrive while a block is being fetched wait for that one round trip. The limit
// protects the node: without Redis it is skipped (queries admitted) rather than refusing all,
// and said once every ten seconds with the count, not once per query of an outage.
import type { RedisClient } from '../stores/redis.js'

// KEYS: 1 the system's counter for this second. ARGV: 1 the limit, 2 tokens wanted.
// Returns the tokens given (0: the second's limit is used up).
const SCRIPT = `
local left = tonumber(ARGV[1]) - tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
local give = math.min(tonumber(ARGV[2]), math.max(1, math.floor(left / 4)))
if redis.call('INCRBY', KEYS[1], give) == give then redis.call('PEXPIRE', KEYS[1], 2000) end
return give
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    tongbanRateLease(key: string, limit: number, wanted: number): Promise<number>
  }
}

interface Lease {
  second: number
  /** Tokens held for `second`, not yet spent. */
  left: number
  /** Admitted on this replica in `second`, and in the second before it. */
  used: number
  usedBefore: number
  /** Queries waiting for a block. */
  waiting: number
  /** Redis said the second's limit is used up. */
  exhausted: boolean
  fetching?: Promise<void>
}

export const rateKey = (system: string, second: number) => `rate:${system}:${second}`

export class RateLeases {
  private readonly bySystem = new Map<string, Lease>()
  private readonly minBlock: number
  private readonly maxBlock: number
  /** Queries admitted unchecked since the last warning, and when that was. */
  private skipped = 0
  private lastSkipWarning = 0

  constructor(
    private readonly redis: RedisClient,
    readonly limit: number,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {
    this.maxBlock = Math.max(1, Math.floor(limit / 8))
    this.minBlock = Math.min(this.maxBlock, Math.ceil(limit / 64))
    redis.defineCommand('tongbanRateLease', { numberOfKeys: 1, lua: SCRIPT })
  }

  /**
   * One query of `system` now: true when admitted, false when over the limit. Synchronous
   * while this replica holds tokens; a promise while it fetches a block (true when Redis
   * cannot be reached: the limit is skipped).
   */
  take(system: string, now = Date.now()): boolean | Promise<boolean> {
    let l = this.bySystem.get(system)
    // A query that waited for a block while the next second began counts in that second.
    const second = Math.max(Math.floor(now / 1000), l?.second ?? 0)
    if (!l) {
      l = { second, left: 0, used: 0, usedBefore: 0, waiting: 0, exhausted: false }
      this.bySystem.set(system, l)
    } else if (l.second !== second) {
      l.usedBefore = l.second === second - 1 ? l.used : 0
      l.second = second
      l.left = 0
      l.used = 0
      l.exhausted = false
      l.fetching = undefined
    }
    if (l.left > 0) {
      l.left--
      l.used++
      return true
    }
    if (l.exhausted) return false
    const lease = l
    lease.waiting++
    lease.fetching ??= this.fetch(lease, system, second)
    return lease.fetching.then(
      () => {
        lease.waiting--
        return this.take(system, now)
      },
      (e) => {
        lease.waiting--
        this.skip(e)
        return true
      },
    )
  }

  private skip(err: unknown): void {
    this.skipped++
    const now = Date.now()
    if (now - this.lastSkipWarning < 10_000) return
    this.log.warn({ err, queries: this.skipped }, 'rate limiting skipped: Redis unavailable')
    this.lastSkipWarning = now
    this.skipped = 0
  }

  private async fetch(l: Lease, system: string, second: number): Promise<void> {
    // A tenth of the rate (of the second before, or of this one if it is higher), at least
    // one token for every query waiting now and the minimum block, at most an eighth of the limit.
    const rate = Math.ceil(Math.max(l.usedBefore, l.used) / 10)
    const wanted = Math.min(Math.max(rate, l.waiting, this.minBlock), this.maxBlock)
    try {
      const given = await this.redis.tongbanRateLease(rateKey(system, second), this.limit, wanted)
      if (l.second !== second) return // the second is over: its tokens are worthless now
      l.left += given
      if (given === 0) l.exhausted = true
    } finally {
      if (l.second === second) l.fetching = undefined
    }
  }
}
