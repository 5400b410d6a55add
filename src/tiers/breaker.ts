// One guard per next hop (per replica, in memory; cockatiel): a bulkhead (at most N calls in
// flight to that hop, the rest refused at once) and the call step's circuit breaker
// (src/exchange/circuit.ts: after K consecutive failures the hop is not called for a while;
// then one probe decides). A slow or dead neighbour thus costs this node at most N sockets
// and N waiting requests, never all of them.
import { BulkheadPolicy, bulkhead } from 'cockatiel'
import { Circuit, type CircuitStateName } from '../exchange/circuit.js'
import { Problem, isProblem } from '../problems/problem.js'

export interface GuardOptions {
  maxConcurrent: number
  failures: number
  openMs: number
  /** Told of every change of the breaker's state (metrics: tongban_upstream_circuit_state). */
  onState?: (hop: string, state: BreakerState) => void
}

export type BreakerState = CircuitStateName

/** What a guarded call gives back: enough to tell a failing hop from one that passes on another's failure. */
export interface GuardedAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

// The hop failed to carry the call. Anything else thrown (a bug, a missing nodeUrl) counts neither way.
const HOP_FAULTS = new Set(['HOP_UNAVAILABLE', 'HOP_TIMEOUT', 'HOP_BAD_RESPONSE'])

export class HopGuard<T extends GuardedAnswer = GuardedAnswer> {
  private readonly circuit: Circuit<T>
  private readonly slots: BulkheadPolicy

  constructor(readonly hop: string, private readonly opts: GuardOptions) {
    const onState = opts.onState
    this.slots = bulkhead(opts.maxConcurrent, 0)
    this.circuit = new Circuit<T>({
      failures: opts.failures,
      halfOpenAfterMs: opts.openMs,
      isFault: (e) => isProblem(e) && HOP_FAULTS.has(e.code),
      isFaultyResult: (res) => res.status >= 500 && !isSomeoneElses(res, hop),
      onState: onState && ((s) => onState(hop, s)),
      refusal: (retryAfter) =>
        new Problem(503, 'HOP_CIRCUIT_OPEN', `node ${hop} failed repeatedly; calls to it are suspended for ${retryAfter} s`, { hop, retryAfter }),
    })
  }

  /**
   * Runs one call to the hop: 503 HOP_CIRCUIT_OPEN while the breaker is open or its probe is
   * out, 503 HOP_SATURATED when all slots are taken (checked after the breaker, so a refused
   * call never takes the probe's turn).
   */
  async run(fn: () => Promise<T>): Promise<T> {
    // Both checks and the slot's taking happen before the first await: no call slips between them.
    this.circuit.admit()
    if (this.slots.executionSlots <= 0) {
      throw new Problem(503, 'HOP_SATURATED', `${this.opts.maxConcurrent} calls to node ${this.hop} are already in flight; try again shortly`, {
        hop: this.hop,
        retryAfter: 1,
      })
    }
    return this.circuit.run(() => this.slots.execute(fn))
  }

  snapshot() {
    return {
      hop: this.hop,
      state: this.circuit.state,
      consecutiveFailures: this.circuit.consecutiveFailures,
      inFlight: this.opts.maxConcurrent - this.slots.executionSlots,
    }
  }
}

/** A 5xx that names another hop (further down the path, or an upstream) is not this hop failing. */
function isSomeoneElses(res: GuardedAnswer, hop: string): boolean {
  if (!String(res.headers['content-type'] ?? '').startsWith('application/problem+json')) return false
  try {
    const p = JSON.parse(res.body) as { hop?: unknown }
    return typeof p.hop === 'string' && p.hop !== hop
  } catch {
    return false
  }
}
