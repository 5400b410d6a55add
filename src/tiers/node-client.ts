// The node-to-node client: mutual TLS with the node certificate, the server checked to be
// the very node expected (certificate chained to the trusted CA, CN tongban-node-<id>), one
// pooled undici client per next hop, a hard deadline per call, and the hop's guard
// (bulkhead + circuit breaker, on cockatiel: breaker.ts). Every failure becomes a problem naming the hop:
// 502 HOP_UNAVAILABLE, 504 HOP_TIMEOUT, 503 HOP_CIRCUIT_OPEN / HOP_SATURATED.
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls'
import { Pool, errors } from 'undici'
import { Problem } from '../problems/problem.js'
import { nodeIdOfCert } from './assertion.js'
import { HopGuard } from './breaker.js'
import { NODE_MAX_HEADER_BYTES } from './listener.js'
import type { TopologyNode } from './topology.js'

const MAX_RESPONSE_BYTES = 4 * 1024 * 1024

export interface NodeClientOptions {
  certPem: string
  keyPem: string
  caPem: string
  timeoutMs: number
  maxConcurrentPerHop: number
  breaker: { failures: number; openMs: number }
  /** Breaker state changes per next hop (metrics). */
  onBreakerState?: (hop: string, state: 'closed' | 'open' | 'half-open') => void
}

export interface HopRequest {
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string | Buffer
  /** This call's budget (ms); the configured hop timeout caps it. */
  timeoutMs?: number
  /** Catalogue sync and other background traffic bypass the query guard (its retries are BullMQ's). */
  guarded?: boolean
}

export interface HopResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** Wall time of the call (ms). */
  ms: number
}

const isTimeout = (e: any) =>
  e instanceof errors.HeadersTimeoutError ||
  e instanceof errors.BodyTimeoutError ||
  e instanceof errors.ConnectTimeoutError ||
  e?.name === 'TimeoutError' ||
  e?.name === 'AbortError' ||
  e?.code === 'UND_ERR_CONNECT_TIMEOUT'

export class NodeClient {
  private readonly pools = new Map<string, Pool>()
  private readonly guards = new Map<string, HopGuard<HopResponse>>()
  private readonly connects = new Map<string, number>()
  // One TLS context (CA, certificate and key parsed once) for every connection: undici made
  // a new one per connection from the PEM options (1-2 % of a relaying node's CPU).
  private secureContext: SecureContext | null = null

  constructor(private readonly opts: NodeClientOptions) {}

  /** TLS connections opened to this hop so far (kept alive and reused between calls). */
  connections(hop: string): number {
    return this.connects.get(hop) ?? 0
  }

  guard(hop: string): HopGuard<HopResponse> {
    let g = this.guards.get(hop)
    if (!g) {
      g = new HopGuard<HopResponse>(hop, { maxConcurrent: this.opts.maxConcurrentPerHop, ...this.opts.breaker, onState: this.opts.onBreakerState })
      this.guards.set(hop, g)
    }
    return g
  }

  allGuards(): HopGuard<HopResponse>[] {
    return [...this.guards.values()]
  }

  private pool(hop: TopologyNode): Pool {
    if (!hop.nodeUrl) throw new Problem(502, 'HOP_NOT_CONFIGURED', `node ${hop.id} has no nodeUrl in the topology`, { hop: hop.id })
    const key = `${hop.id} ${hop.nodeUrl}`
    let pool = this.pools.get(key)
    if (!pool) {
      const expected = hop.id
      this.secureContext ??= createSecureContext({ ca: this.opts.caPem, cert: this.opts.certPem, key: this.opts.keyPem, minVersion: 'TLSv1.2' })
      pool = new Pool(new URL(hop.nodeUrl).origin, {
        connections: this.opts.maxConcurrentPerHop,
        keepAliveTimeout: 10_000,
        maxHeaderSize: NODE_MAX_HEADER_BYTES,
        // A backstop only: each call's own deadline (its abort signal) ends the wait for a connection.
        connectTimeout: this.opts.timeoutMs + 2000,
        connect: {
          secureContext: this.secureContext,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
          // The usual host name check, and the certificate must name the node we mean to reach.
          checkServerIdentity: (host: string, cert: PeerCertificate) => {
            const err = checkServerIdentity(host, cert)
            if (err) return err
            const named = nodeIdOfCert(cert as unknown as { subject: Record<string, string> })
            return named === expected ? undefined : new Error(`the server at ${host} is node ${named ?? '?'}, not node ${expected}`)
          },
        },
      })
      pool.on('connect', () => this.connects.set(expected, this.connections(expected) + 1))
      this.pools.set(key, pool)
    }
    return pool
  }

  async send(hop: TopologyNode, req: HopRequest): Promise<HopResponse> {
    // Query calls pass their budget (already capped by the hop timeout); background calls their own.
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs
    if (timeoutMs < 20) throw new Problem(504, 'HOP_TIMEOUT', `no time left to call node ${hop.id}`, { hop: hop.id })
    if (req.guarded === false) return this.once(hop, req, timeoutMs)
    return this.guard(hop.id).run(() => this.once(hop, req, timeoutMs))
  }

  private async once(hop: TopologyNode, req: HopRequest, timeoutMs: number): Promise<HopResponse> {
    const started = performance.now()
    const pool = this.pool(hop)
    // The deadline is this timer, not undici's: its own timers are coarse (they may fire up
    // to half a second early), and an abort while a connection is still being made only
    // takes effect once that connection is up or has failed. The call is given up at the
    // deadline either way; the socket work left behind is aborted as soon as undici can.
    const abort = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new Error('deadline')
        e.name = 'TimeoutError'
        abort.abort(e)
        reject(e)
      }, timeoutMs)
    })
    try {
      let res
      try {
        res = await Promise.race([
          pool.request({
            path: req.path,
            method: req.method,
            headers: { ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}), ...req.headers },
            body: req.body,
            headersTimeout: timeoutMs + 1000,
            bodyTimeout: timeoutMs + 1000,
            signal: abort.signal,
          }),
          deadline,
        ])
      } catch (e) {
        if (isTimeout(e)) throw new Problem(504, 'HOP_TIMEOUT', `node ${hop.id} did not answer within ${timeoutMs} ms`, { hop: hop.id })
        throw new Problem(502, 'HOP_UNAVAILABLE', `node ${hop.id} is unreachable (${describe(e)})`, { hop: hop.id })
      }
      let body: string
      try {
        body = await Promise.race([readLimited(res.body), deadline])
      } catch (e) {
        res.body.destroy()
        if (isTimeout(e)) throw new Problem(504, 'HOP_TIMEOUT', `node ${hop.id} did not finish its answer within ${timeoutMs} ms`, { hop: hop.id })
        throw new Problem(502, 'HOP_BAD_RESPONSE', `node ${hop.id} sent a broken answer`, { hop: hop.id })
      }
      return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - started }
    } finally {
      clearTimeout(timer)
      deadline.catch(() => {})
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => {})))
  }
}

function describe(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  return err.cause?.code ?? err.code ?? err.cause?.message ?? err.message ?? 'error'
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy()
      throw new Error('answer too large')
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
