// One guard per next hop (per replica, in memory): a bulkhead (at most N calls in flight to
// that hop, the rest refused at once) and a circuit breaker (after K consecutive failures the
// hop is not called for a while; then one probe decides). A slow or dead neighbour thus
// costs this node at most N sockets and N waiting requests, never all of them.
import { Problem } from '../problems/problem.js'

export interface GuardOptions {
  maxConcurrent: number
  failures: number
  openMs: number
  now?: () => number
  /** Told of every change of the breaker's state (metrics: tongban_upstream_circuit_state). */
  onState?: (hop: string, state: BreakerState) => void
}

export type BreakerState = 'closed' | 'open' | 'half-open'

export class HopGuard {
  private _state: BreakerState = 'closed'
  private consecutive = 0
  private openedAt = 0
  private inFlight = 0
  private probing = false
  private readonly now: () => number

  constructor(readonly hop: string, private readonly opts: GuardOptions) {
    this.now = opts.now ?? Date.now
  }

  private get state(): BreakerState {
    return this._state
  }

  private set state(next: BreakerState) {
    if (next === this._state) return
    this._state = next
    this.opts.onState?.(this.hop, next)
  }

  /** Takes a slot, or throws 503 HOP_CIRCUIT_OPEN / HOP_SATURATED naming the hop. */
  enter(): { probe: boolean } {
    let probe = false
    if (this.state === 'open') {
      const left = this.openedAt + this.opts.openMs - this.now()
      if (left > 0) throw this.openProblem(left)
      this.state = 'half-open'
    }
    if (this.state === 'half-open') {
      // One call finds out whether the hop is back; the others keep failing fast meanwhile.
      if (this.probing) throw this.openProblem(this.opts.openMs)
      this.probing = probe = true
    }
    if (this.inFlight >= this.opts.maxConcurrent) {
      if (probe) this.probing = false
      throw new Problem(503, 'HOP_SATURATED', `${this.opts.maxConcurrent} calls to node ${this.hop} are already in flight; try again shortly`, {
        hop: this.hop,
        retryAfter: 1,
      })
    }
    this.inFlight++
    return { probe }
  }

  /** Gives the slot back: ok true (the hop answered), false (it failed), null (neither: e.g. refused before sending). */
  leave(slot: { probe: boolean }, ok: boolean | null): void {
    this.inFlight--
    if (slot.probe) this.probing = false
    if (ok === true) {
      this.consecutive = 0
      this.state = 'closed'
    } else if (ok === false) {
      this.consecutive++
      if (slot.probe || this.state === 'half-open' || this.consecutive >= this.opts.failures) {
        this.state = 'open'
        this.openedAt = this.now()
      }
    } else if (slot.probe && this.state === 'half-open') {
      // The probe said nothing about the hop: let the next call probe.
    }
  }

  snapshot() {
    return { hop: this.hop, state: this.state, consecutiveFailures: this.consecutive, inFlight: this.inFlight }
  }

  private openProblem(leftMs: number): Problem {
    const retryAfter = Math.max(1, Math.ceil(leftMs / 1000))
    return new Problem(503, 'HOP_CIRCUIT_OPEN', `node ${this.hop} failed repeatedly; calls to it are suspended for ${retryAfter} s`, {
      hop: this.hop,
      retryAfter,
    })
  }
}
