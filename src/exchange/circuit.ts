// The call step's circuit breaker (cockatiel), one per callee and replica, in memory. Shared by
// the two kinds of callee: departmental upstreams (upstream-breaker.ts) and next hops
// (src/tiers/breaker.ts). After `failures` consecutive faults the callee is not called for
// `halfOpenAfterMs`; then one call probes it and its outcome closes or reopens the circuit.
// While open, and while the probe is out, calls are refused at once with the callee's own
// 503 problem and a Retry-After: cockatiel would make them wait for the probe, which against
// a slow callee costs each of them the probe's whole deadline.
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel'
import type { Problem } from '../problems/problem.js'

export type CircuitStateName = 'closed' | 'open' | 'half-open'

export interface CircuitOptions<T> {
  failures: number
  halfOpenAfterMs: number
  /** A thrown error that says the callee is unwell (anything else counts neither way). */
  isFault: (e: Error) => boolean
  /** An answer that says the callee is unwell although it answered (a 5xx of its own). */
  isFaultyResult?: (r: T) => boolean
  /** Told of every change of state (metrics: tongban_upstream_circuit_state). */
  onState?: (state: CircuitStateName) => void
  /** The refusal, given the whole seconds until a probe may go. */
  refusal: (retryAfter: number) => Problem
}

const STATE_NAME: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
}

export class Circuit<T = unknown> {
  private readonly policy: CircuitBreakerPolicy
  private readonly breaker: ConsecutiveBreaker
  private openedAt = 0

  constructor(private readonly opts: CircuitOptions<T>) {
    this.breaker = new ConsecutiveBreaker(opts.failures)
    const isFaultyResult = opts.isFaultyResult
    const handled = isFaultyResult ? handleWhen(opts.isFault).orWhenResult((r) => isFaultyResult(r as T)) : handleWhen(opts.isFault)
    this.policy = circuitBreaker(handled, { halfOpenAfter: opts.halfOpenAfterMs, breaker: this.breaker })
    this.policy.onBreak(() => {
      this.openedAt = Date.now()
    })
    if (opts.onState) {
      const tell = opts.onState
      this.policy.onStateChange((s) => tell(STATE_NAME[s]))
    }
  }

  get state(): CircuitStateName {
    return STATE_NAME[this.policy.state]
  }

  /** Faults in a row since the last success (what the breaker counts towards `failures`). */
  get consecutiveFailures(): number {
    return this.breaker.state
  }

  /** Throws the refusal unless a call made now would be let through (closed, or the pause is over). */
  admit(): void {
    const s = this.policy.state
    if (s === CircuitState.Closed) return
    if (s === CircuitState.Open) {
      const left = this.openedAt + this.opts.halfOpenAfterMs - Date.now()
      if (left > 0) throw this.refused(left)
      return
    }
    // Half-open: one probe is out and may fail; the next one could go a whole pause later.
    throw this.refused(this.opts.halfOpenAfterMs)
  }

  async run(fn: () => Promise<T>): Promise<T> {
    this.admit()
    try {
      return (await this.policy.execute(fn)) as T
    } catch (e) {
      if (e instanceof BrokenCircuitError) throw this.refused(this.opts.halfOpenAfterMs)
      throw e
    }
  }

  private refused(leftMs: number): Problem {
    return this.opts.refusal(Math.max(1, Math.ceil(leftMs / 1000)))
  }
}
