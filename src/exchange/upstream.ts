// The call-upstream step: one pooled undici client per upstream origin, a hard deadline per
// call, bounded retries for idempotent operations only, and every failure mapped to a
// problem that names the hop (502 unreachable or broken, 504 too slow).
import { Pool, errors, type Dispatcher } from 'undici'
import { Problem } from '../problems/problem.js'
import type { UpstreamBinding } from '../catalog/types.js'

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

export class Upstreams {
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
    const { pool, prefix } = this.pool(c.baseUrl)
    const deadline = Date.now() + c.binding.timeoutMs
    const attempts = c.idempotent ? 1 + c.binding.retries : 1
    let last: Problem | undefined
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const remaining = deadline - Date.now()
      if (remaining <= 0) break
      try {
        return await this.once(pool, prefix, c, remaining)
      } catch (e) {
        last = e as Problem
        // A timeout has used the budget, and a refusal by the upstream will not change.
        if (last.status === 504 || last.code === 'UPSTREAM_REJECTED' || last.code === 'UPSTREAM_BAD_RESPONSE') break
        if (attempt < attempts) await new Promise((r) => setTimeout(r, 25 * attempt))
      }
    }
    throw last ?? new Problem(504, 'UPSTREAM_TIMEOUT', 'the upstream did not answer in time', { hop: c.binding.name })
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
