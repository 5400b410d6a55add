// The call-upstream step's circuit breaker, one per departmental upstream (per replica, in
// memory; cockatiel, through circuit.ts): after `failures` consecutive failed calls the
// upstream is not called for `halfOpenAfterMs`; then one call probes it, and its outcome
// closes or reopens the circuit. While open, queries are refused at once with 503
// UPSTREAM_CIRCUIT_OPEN and a Retry-After, so a dead provider costs neither sockets nor the
// consumers' deadlines.
import { Problem, isProblem } from '../problems/problem.js'
import { Circuit, type CircuitStateName } from './circuit.js'

export type UpstreamCircuitState = CircuitStateName

export interface UpstreamBreakerOptions {
  failures: number
  halfOpenAfterMs: number
  /** Told of every change of an upstream's state (metrics: tongban_upstream_circuit_state). */
  onState?: (upstream: string, state: UpstreamCircuitState) => void
}

// What says the provider is unwell. A refusal (4xx, UPSTREAM_REJECTED) is the query's own
// business; an answer outside the schema is checked after the call and never reaches here.
const PROVIDER_FAULTS = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT', 'UPSTREAM_BAD_RESPONSE'])
const isProviderFault = (e: Error) => isProblem(e) && PROVIDER_FAULTS.has(e.code)

export class UpstreamBreakers {
  private readonly circuits = new Map<string, Circuit>()

  constructor(private readonly opts: UpstreamBreakerOptions) {}

  /** Runs one call to the upstream through its breaker; throws 503 UPSTREAM_CIRCUIT_OPEN while open. */
  run<T>(upstream: string, fn: () => Promise<T>): Promise<T> {
    return this.circuit(upstream).run(fn) as Promise<T>
  }

  state(upstream: string): UpstreamCircuitState {
    return this.circuits.get(upstream)?.state ?? 'closed'
  }

  private circuit(upstream: string): Circuit {
    let c = this.circuits.get(upstream)
    if (!c) {
      const { failures, halfOpenAfterMs, onState } = this.opts
      c = new Circuit({
        failures,
        halfOpenAfterMs,
        isFault: isProviderFault,
        onState: onState && ((s) => onState(upstream, s)),
        refusal: (retryAfter) =>
          new Problem(503, 'UPSTREAM_CIRCUIT_OPEN', `upstream ${upstream} failed ${failures} times in a row; calls to it are suspended for ${retryAfter} s`, {
            hop: upstream,
            retryAfter,
          }),
      })
      this.circuits.set(upstream, c)
    }
    return c
  }
}
