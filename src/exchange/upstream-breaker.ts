// The call-upstream step's circuit breaker, one per departmental upstream (per replica, in
// memory; cockatiel): after `failures` consecutive failed calls the upstream is not called
// for `halfOpenAfterMs`; then one call probes it, and its outcome closes or reopens the
// circuit. While open, queries are refused at once with 503 UPSTREAM_CIRCUIT_OPEN and a
// Retry-After, so a dead provider costs neither sockets nor the consumers' deadlines.
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel'
import { Problem, isProblem } from '../problems/problem.js'

export type UpstreamCircuitState = 'closed' | 'open' | 'half-open'

export interface UpstreamBreakerOptions {
  failures: number
  halfOpenAfterMs: number
  /** Told of every change of an upstream's state (metrics: tongban_upstream_circuit_state). */
  onState?: (upstream: string, state: UpstreamCircuitState) => void
}

// What says the provider is unwell. A refusal (4xx, UPSTREAM_REJECTED) is the query's own
// business; an answer outside the schema is checked after the call and never reaches here.
const PROVIDER_FAULTS = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT', 'UPSTREAM_BAD_RESPONSE'])

const STATE_NAME: Record<CircuitState, UpstreamCircuitState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
}

class UpstreamCircuit {
  readonly policy: CircuitBreakerPolicy
  private openedAt = 0

  constructor(readonly upstream: string, private readonly opts: UpstreamBreakerOptions) {
    this.policy = circuitBreaker(handleWhen((e) => isProblem(e) && PROVIDER_FAULTS.has(e.code)), {
      halfOpenAfter: opts.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(opts.failures),
    })
    this.policy.onBreak(() => {
      this.openedAt = Date.now()
    })
    this.policy.onStateChange((s) => opts.onState?.(upstream, STATE_NAME[s]))
  }

  get state(): UpstreamCircuitState {
    return STATE_NAME[this.policy.state]
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await this.policy.execute(fn)
    } catch (e) {
      if (e instanceof BrokenCircuitError) throw this.openProblem()
      throw e
    }
  }

  private openProblem(): Problem {
    // Open: what is left of the pause; half-open (a probe is out): a whole pause, as the probe may fail.
    const left = this.policy.state === CircuitState.Open ? this.openedAt + this.opts.halfOpenAfterMs - Date.now() : this.opts.halfOpenAfterMs
    const retryAfter = Math.max(1, Math.ceil(left / 1000))
    return new Problem(503, 'UPSTREAM_CIRCUIT_OPEN', `upstream ${this.upstream} failed ${this.opts.failures} times in a row; calls to it are suspended for ${retryAfter} s`, {
      hop: this.upstream,
      retryAfter,
    })
  }
}

export class UpstreamBreakers {
  private readonly circuits = new Map<string, UpstreamCircuit>()

  constructor(private readonly opts: UpstreamBreakerOptions) {}

  /** Runs one call to the upstream through its breaker; throws 503 UPSTREAM_CIRCUIT_OPEN while open. */
  run<T>(upstream: string, fn: () => Promise<T>): Promise<T> {
    return this.circuit(upstream).run(fn)
  }

  state(upstream: string): UpstreamCircuitState {
    return this.circuits.get(upstream)?.state ?? 'closed'
  }

  private circuit(upstream: string): UpstreamCircuit {
    let c = this.circuits.get(upstream)
    if (!c) {
      c = new UpstreamCircuit(upstream, this.opts)
      this.circuits.set(upstream, c)
    }
    return c
  }
}
