// The call-upstream step: one pooled undici client per upstream origin, a hard deadline per
// call, bounded retries with exponential backoff for idempotent operations only (cockatiel),
// a circuit breaker per upstream (upstream-breaker.ts), and every failure mapped to a
// problem that names the hop (502 unreachable or broken, 503 circuit open, 504 too slow).
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel'
import { Pool, errors, type Dispatcher } from 'undici'
import { Problem, isProblem } from '../problems/problem.js'
import type { UpstreamBinding } from '../catalog/types.js'
import { UpstreamBreakers, type UpstreamBreakerOptions } from './upstream-breaker.js'

const MAX_RESPONSE_BYTES = 1024 * 1024

export interface UpstreamCall {
  baseUrl: string
  binding: UpstreamBinding
  body: string
  headers: Record<string, string>
  idempotent: boolean
}

const isTimeout = (e: any) =>
  e instanceof errors.HeadersTimeoutError ||
  e instanceof errors.BodyTimeoutError ||
  e?.name === 'TimeoutError' ||
  e?.name === 'AbortError' ||
  e?.code === 'UND_ERR_CONNECT_TIMEOUT'

const NOT_RETRIED = new Set(['UPSTREAM_REJECTED', 'UPSTREAM_BAD_RESPONSE'])
// Backoff between attempts (cockatiel's decorrelated jitter around doubling delays).
const RETRY_FIRST_DELAY_MS = 25
const RETRY_MAX_DELAY_MS = 400

export class Upstreams {
  private readonly breakers: UpstreamBreakers

  constructor(breaker: UpstreamBreakerOptions) {
    this.breakers = new UpstreamBreakers(breaker)
  }

  /** The breaker state of one upstream (closed until it was first called). */
  circuitState(upstream: string) {
    return this.breakers.state(upstream)
  }

  private pools = new Map<string, Pool>()
  // Parsed base URLs: a URL parse per query showed in the profile.
  private bases = new Map<string, { pool: Pool; prefix: string }>()

  private pool(baseUrl: string): { pool: Pool; prefix: string } {
    const known = this.bases.get(baseUrl)
    if (known) return known
    const url = new URL(baseUrl)
    let pool = this.pools.get(url.origin)
    if (!pool) {
      pool = new Pool(url.origin, { connections: 128, keepAliveTimeout: 10_000, connectTimeout: 2_000 })
      this.pools.set(url.origin, pool)
    }
    const entry = { pool, prefix: url.pathname.replace(/\/$/, '') }
    this.bases.set(baseUrl, entry)
    return entry
  }

  async call(c: UpstreamCall): Promise<unknown> {
    // The breaker sees the call as a whole: one failed query (after its retries) is one failure.
    return this.breakers.run(c.binding.name, () => this.withRetries(c))
  }

  private async withRetries(c: UpstreamCall): Promise<unknown> {
    const { pool, prefix } = this.pool(c.baseUrl)
    const deadline = Date.now() + c.binding.timeoutMs
    let last: Problem | undefined
    const attempt = () => {
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw last ?? new Problem(504, 'UPSTREAM_TIMEOUT', 'the upstream did not answer in time', { hop: c.binding.name })
      return this.once(pool, prefix, c, remaining).catch((e: Problem) => {
        last = e
        throw e
      })
    }
    if (!c.idempotent || c.binding.retries < 1) return attempt()
    // A timeout has used the budget, and a refusal by the upstream will not change; no retry
    // once the deadline has passed either.
    const again = retry(handleWhen((e) => isProblem(e) && e.status !== 504 && !NOT_RETRIED.has(e.code) && Date.now() < deadline), {
      maxAttempts: c.binding.retries,
      backoff: new ExponentialBackoff({ initialDelay: RETRY_FIRST_DELAY_MS, maxDelay: RETRY_MAX_DELAY_MS }),
    })
    return again.execute(attempt)
  }

  /**
   * One attempt, through undici's dispatcher API: the answer's bytes are gathered by a plain
   * handler (class Attempt), without the Readable stream, async iterator and AbortSignal
   * listeners that `pool.request` sets up per call (they showed in the profile). The whole
   * call (headers and body) has one deadline; a timer cleared at the end, nothing left behind.
   */
  private once(pool: Pool, prefix: string, c: UpstreamCall, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const attempt = new Attempt(c, timeoutMs, resolve, reject)
      try {
        pool.dispatch({
          path: prefix + c.binding.path,
          method: c.binding.method as Dispatcher.HttpMethod,
          headers: { 'content-type': 'application/json', ...c.headers },
          body: c.body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        }, attempt)
      } catch {
        attempt.fail(new Problem(502, 'UPSTREAM_UNAVAILABLE', `upstream ${c.binding.name} is unreachable`, { hop: c.binding.name }))
      }
    })
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()))
  }
}

/** What a call's answer is, from its status and text; problems name the hop. */
function parseAnswer(statusCode: number, text: string, hop: string): unknown {
  if (statusCode >= 500) throw new Problem(502, 'UPSTREAM_ERROR', `upstream ${hop} failed (HTTP ${statusCode})`, { hop })
  if (statusCode >= 300) throw new Problem(502, 'UPSTREAM_REJECTED', `upstream ${hop} refused the query (HTTP ${statusCode})`, { hop })
  try {
    return JSON.parse(text)
  } catch {
    throw new Problem(502, 'UPSTREAM_BAD_RESPONSE', `upstream ${hop} answered with invalid JSON`, { hop })
  }
}

const onDeadline = (a: Attempt) => a.deadline()

/**
 * One upstream call's dispatch handler. A class, not closures: its methods are shared, so a
 * call allocates one object and one timer.
 */
class Attempt implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null
  private status = 0
  private started = false
  private timedOut = false
  private settled = false
  private size = 0
  private readonly chunks: Buffer[] = []
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly c: UpstreamCall,
    timeoutMs: number,
    private readonly resolve: (v: unknown) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.timer = setTimeout(onDeadline, timeoutMs, this)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode
    this.started = true
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.size += chunk.length
    if (this.size > MAX_RESPONSE_BYTES) {
      controller.abort(new Error('upstream answer too large'))
      return
    }
    this.chunks.push(chunk)
  }

  onResponseEnd(): void {
    if (!this.settle()) return
    try {
      this.resolve(parseAnswer(this.status, Buffer.concat(this.chunks, this.size).toString('utf8'), this.c.binding.name))
    } catch (e) {
      this.reject(e)
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, e: Error): void {
    if (isTimeout(e) || this.timedOut) return this.fail(this.timeoutProblem())
    const hop = this.c.binding.name
    this.fail(this.started
      ? new Problem(502, 'UPSTREAM_BAD_RESPONSE', `upstream ${hop} sent a broken answer`, { hop })
      : new Problem(502, 'UPSTREAM_UNAVAILABLE', `upstream ${hop} is unreachable`, { hop }))
  }

  deadline(): void {
    this.timedOut = true
    this.controller?.abort(new DOMException('upstream deadline', 'TimeoutError'))
    this.fail(this.timeoutProblem())
  }

  fail(p: Problem): void {
    if (this.settle()) this.reject(p)
  }

  /** True the first time only: an answer, an error and the deadline may race. */
  private settle(): boolean {
    if (this.settled) return false
    this.settled = true
    clearTimeout(this.timer)
    return true
  }

  private timeoutProblem(): Problem {
    const hop = this.c.binding.name
    return this.started
      ? new Problem(504, 'UPSTREAM_TIMEOUT', `upstream ${hop} did not finish its answer in time`, { hop })
      : new Problem(504, 'UPSTREAM_TIMEOUT', `upstream ${hop} did not answer within ${this.c.binding.timeoutMs} ms`, { hop })
  }
}
