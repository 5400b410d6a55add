// The call-upstream step: one pooled undici client per upstream origin, a hard deadline per
// call, bounded retries for idempotent operations only, and every failure mapped to a
// problem that names the hop (502 unreachable or broken, 504 too slow).
import { Pool, errors, type Dispatcher } from 'undici'
import { Problem } from '../problem.js'
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
   * handler, without the Readable stream, async iterator and AbortSignal listeners that
   * `pool.request` sets up per call (they showed in the profile). The whole call (headers
   * and body) has one deadline; a timer cleared at the end, nothing left behind.
   */
  private once(pool: Pool, prefix: string, c: UpstreamCall, timeoutMs: number): Promise<unknown> {
    const hop = c.binding.name
    return new Promise((resolve, reject) => {
      let controller: { abort(reason: Error): void } | null = null
      let status = 0
      let started = false
      let timedOut = false
      let size = 0
      const chunks: Buffer[] = []
      let settled = false
      const settle = (f: () => void) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        f()
      }
      const timer = setTimeout(() => {
        timedOut = true
        const e = new DOMException('upstream deadline', 'TimeoutError')
        controller?.abort(e)
        settle(() => reject(started
          ? new Problem(504, 'UPSTREAM_TIMEOUT', `upstream ${hop} did not finish its answer in time`, { hop })
          : new Problem(504, 'UPSTREAM_TIMEOUT', `upstream ${hop} did not answer within ${c.binding.timeoutMs} ms`, { hop })))
      }, timeoutMs)
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (ctl) => {
          controller = ctl
        },
        onResponseStart: (_ctl, statusCode) => {
          status = statusCode
          started = true
        },
        onResponseData: (ctl, chunk) => {
          size += chunk.length
          if (size > MAX_RESPONSE_BYTES) {
            ctl.abort(new Error('upstream answer too large'))
            return
          }
          chunks.push(chunk)
        },
        onResponseEnd: () => {
          settle(() => {
            try {
              resolve(this.parse(status, Buffer.concat(chunks, size).toString('utf8'), hop))
            } catch (e) {
              reject(e)
            }
          })
        },
        onResponseError: (_ctl, e) => {
          settle(() => {
            if (isTimeout(e) || timedOut) {
              reject(started
                ? new Problem(504, 'UPSTREAM_TIMEOUT', `upstream ${hop} did not finish its answer in time`, { hop })
                : new Problem(504, 'UPSTREAM_TIMEOUT', `upstream ${hop} did not answer within ${c.binding.timeoutMs} ms`, { hop }))
            } else if (started) {
              reject(new Problem(502, 'UPSTREAM_BAD_RESPONSE', `upstream ${hop} sent a broken answer`, { hop }))
            } else {
              reject(new Problem(502, 'UPSTREAM_UNAVAILABLE', `upstream ${hop} is unreachable`, { hop }))
            }
          })
        },
      }
      try {
        pool.dispatch({
          path: prefix + c.binding.path,
          method: c.binding.method as Dispatcher.HttpMethod,
          headers: { 'content-type': 'application/json', ...c.headers },
          body: c.body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        }, handler)
      } catch {
        settle(() => reject(new Problem(502, 'UPSTREAM_UNAVAILABLE', `upstream ${hop} is unreachable`, { hop })))
      }
    })
  }

  private parse(statusCode: number, text: string, hop: string): unknown {
    if (statusCode >= 500) throw new Problem(502, 'UPSTREAM_ERROR', `upstream ${hop} failed (HTTP ${statusCode})`, { hop })
    if (statusCode >= 300) throw new Problem(502, 'UPSTREAM_REJECTED', `upstream ${hop} refused the query (HTTP ${statusCode})`, { hop })
    try {
      return JSON.parse(text)
    } catch {
      throw new Problem(502, 'UPSTREAM_BAD_RESPONSE', `upstream ${hop} answered with invalid JSON`, { hop })
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()))
  }
}
