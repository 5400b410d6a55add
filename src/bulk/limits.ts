// What bulk verification may ask of a provider: at most N items in flight per upstream on
// this replica (a semaphore), and at most R items per second per upstream across all
// replicas (a per-second counter in Redis). Both are per upstream, so a batch against one
// department never slows a batch against another.
import type { RedisClient } from '../stores/redis.js'
import type { BatchConfig } from '../config/index.js'
import { own } from '../catalog/own.js'

export class Semaphore {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(readonly max: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }

  get inFlight(): number {
    return this.active
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class UpstreamLimits {
  private readonly semaphores = new Map<string, Semaphore>()
  private warned = 0

  constructor(
    private readonly cfg: Pick<BatchConfig, 'upstreamConcurrency' | 'upstreamRatePerSecond' | 'limits'>,
    private readonly redis: RedisClient,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {}

  private semaphore(upstream: string, cap = Infinity): Semaphore {
    let s = this.semaphores.get(upstream)
    if (!s) {
      s = new Semaphore(Math.min(cap, own(this.cfg.limits, upstream)?.concurrency ?? this.cfg.upstreamConcurrency))
      this.semaphores.set(upstream, s)
    }
    return s
  }

  rateOf(upstream: string): number {
    return own(this.cfg.limits, upstream)?.ratePerSecond ?? this.cfg.upstreamRatePerSecond
  }

  /** Waits for a slot of this second's budget (cross-replica); Redis away: no rate limit. */
  private async token(upstream: string, shouldStop: () => boolean): Promise<void> {
    const rate = this.rateOf(upstream)
    if (rate <= 0) return
    for (;;) {
      const now = Date.now()
      const second = Math.floor(now / 1000)
      const key = `batchrate:${upstream}:${second}`
      let n: number
      try {
        n = await this.redis.incr(key)
        if (n === 1) await this.redis.pexpire(key, 2000)
      } catch (err) {
        if (Date.now() - this.warned > 10_000) {
          this.warned = Date.now()
          this.log.warn({ err }, 'batch: upstream rate limit skipped (Redis unavailable)')
        }
        return
      }
      if (n <= rate) return
      if (shouldStop()) return
      await sleep((second + 1) * 1000 - now + Math.floor(Math.random() * 20))
    }
  }

  /** Runs fn within the upstream's concurrency (at most `cap`, e.g. a next hop's share) and rate budget. */
  async run<T>(upstream: string, fn: () => Promise<T>, shouldStop: () => boolean = () => false, cap?: number): Promise<T> {
    const release = await this.semaphore(upstream, cap).acquire()
    try {
      await this.token(upstream, shouldStop)
      return await fn()
    } finally {
      release()
    }
  }

  inFlight(): Record<string, number> {
    return Object.fromEntries([...this.semaphores].map(([k, s]) => [k, s.inFlight]))
  }
}
