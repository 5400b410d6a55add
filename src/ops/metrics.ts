// Prometheus metrics (`GET /metrics`). One prom-client registry per app, never the global
// default: tests build many apps in one process, and two nodes in one process must not
// mix their counts.
//
// What is counted where:
// - every request, in an onResponse hook: route, method, status, resource, operation,
//   service, outcome (allowed/denied/failed by status class, as in the audit record) and
//   the problem code (request.audit.reason) — counts and a latency histogram;
// - audit sealing: `app.metrics.auditBatch(size, ms, ok)`, meant as the Sealer's `onBatch`
//   option (src/audit/plugin.ts constructs the Sealer);
// - a cut audit chain: `app.metrics.auditChainCut(chain, cut)`, from the audit plugin's TailGuard;
// - batch items: `app.metrics.batchItem(...)`, from src/batch/worker.ts;
// - circuit breakers: `app.metrics.upstreamCircuit(name, state)`, from the upstream breakers (src/exchange/upstream-breaker.ts) and the hop guards (src/tiers/breaker.ts);
// - at scrape time: BullMQ queue depths, upstream pool stats, Redis status, PostgreSQL pool.
//
// Access: Prometheus scrapes without OAuth tokens. With TONGBAN_METRICS_TOKEN set, /metrics
// wants `Authorization: Bearer <that token>` from anywhere; without it, /metrics answers
// loopback clients only (a sidecar or node exporter on the host) and 403 otherwise. The
// socket address decides, not X-Forwarded-For.
import fp from 'fastify-plugin'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { Problem } from '../problems/problem.js'
import { statusFallback } from '../problems/codes.js'
import { problemResponses } from '../problems/schema.js'

export type CircuitState = 'closed' | 'half-open' | 'open'
const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 }

/** Anything with BullMQ's getJobCounts: the queues whose depth is reported. */
export interface CountableQueue {
  getJobCounts(...types: string[]): Promise<Record<string, number>>
}

export interface Metrics {
  registry: Registry
  /** One answered request (the onResponse hook). */
  request(
    labels: { method: string; route: string; status: string; resource: string; operation: string; service: string; outcome: string; code: string },
    seconds: number,
  ): void
  /** One sealed (ok) or failed audit batch: its size and how long the commit took. The Sealer's onBatch. */
  auditBatch(size: number, ms: number, ok: boolean): void
  /** An audit chain found cut (1) until the cut is acknowledged (0): src/audit/high-water.ts. */
  auditChainCut(chain: string, cut: boolean): void
  /** One batch item finished (or failed) in a bulk verification job. */
  batchItem(labels: { resource: string; operation: string; outcome: string; code: string }, seconds: number): void
  /** An upstream call failed with this problem code (UPSTREAM_TIMEOUT, …). */
  upstreamError(upstream: string, code: string): void
  /** Circuit-breaker state of an upstream: closed 0, half-open 1, open 2. */
  upstreamCircuit(upstream: string, state: CircuitState): void
  /** Report this queue's job counts (waiting, active, delayed, failed, …) at each scrape. */
  watchQueue(name: string, queue: CountableQueue): void
  /** Report the days ahead the holiday calendar is complete (src/policy/calendar-coverage.ts) at each scrape. */
  watchCalendar(daysCovered: () => number): void
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed', 'paused'] as const
const SCRAPE_STEP_TIMEOUT_MS = 1000

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms)
    p.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      () => {
        clearTimeout(timer)
        resolve(undefined)
      },
    )
  })

const outcomeOf = (status: number) => (status < 400 ? 'allowed' : status < 500 ? 'denied' : 'failed')

export function createMetrics(app: FastifyInstance): Metrics {
  const registry = new Registry()
  registry.setDefaultLabels({ node: app.config.node.id, replica: app.config.replicaId })
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const requests = new Counter({
    name: 'tongban_requests_total',
    help: 'Requests answered, by route, resource, service, outcome (allowed/denied/failed) and problem code',
    labelNames: ['method', 'route', 'status', 'resource', 'operation', 'service', 'outcome', 'code'] as const,
    registers,
  })
  const latency = new Histogram({
    name: 'tongban_request_duration_seconds',
    help: 'Time from request received to response sent (sealing included)',
    labelNames: ['method', 'route', 'resource', 'service', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const auditSize = new Histogram({
    name: 'tongban_audit_batch_size',
    help: 'Records per sealed audit batch (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
    registers,
  })
  const auditSeal = new Histogram({
    name: 'tongban_audit_seal_seconds',
    help: 'Time to seal one audit batch: tree, signature and the PostgreSQL commit',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const auditBatches = new Counter({
    name: 'tongban_audit_batches_total',
    help: 'Audit batches sealed (ok) or not made durable (failed)',
    labelNames: ['result'] as const,
    registers,
  })
  const auditRecords = new Counter({
    name: 'tongban_audit_records_total',
    help: 'Audit records sealed (ok) or not made durable (failed)',
    labelNames: ['result'] as const,
    registers,
  })
  // The alarm: a chain's committed head is behind its high-water mark (a deleted tail).
  const chainCut = new Gauge({
    name: 'tongban_audit_chain_cut',
    help: 'An audit chain whose tail was cut out of PostgreSQL (1) and not yet acknowledged by an operator',
    labelNames: ['chain'] as const,
    registers,
  })
  const batchItems = new Counter({
    name: 'tongban_batch_items_total',
    help: 'Bulk verification items finished, by resource, outcome and problem code',
    labelNames: ['resource', 'operation', 'outcome', 'code'] as const,
    registers,
  })
  const batchItemLatency = new Histogram({
    name: 'tongban_batch_item_duration_seconds',
    help: 'Time to run, seal and record one bulk verification item',
    labelNames: ['resource', 'operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const upstreamErrors = new Counter({
    name: 'tongban_upstream_errors_total',
    help: 'Upstream calls that failed, by upstream and problem code',
    labelNames: ['upstream', 'code'] as const,
    registers,
  })
  const circuit = new Gauge({
    name: 'tongban_upstream_circuit_state',
    help: 'Circuit-breaker state per upstream: 0 closed, 1 half-open, 2 open',
    labelNames: ['upstream'] as const,
    registers,
  })

  const queues = new Map<string, CountableQueue>()
  new Gauge({
    name: 'tongban_queue_jobs',
    help: 'BullMQ jobs per queue and state (read at scrape time)',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      this.reset()
      const all = new Map(queues)
      const jobs = (app as unknown as { jobs?: { deadlines?: CountableQueue } }).jobs
      if (jobs?.deadlines && !all.has('deadlines')) all.set('deadlines', jobs.deadlines)
      await Promise.all([...all].map(async ([name, q]) => {
        const counts = await withTimeout(q.getJobCounts(...QUEUE_STATES), SCRAPE_STEP_TIMEOUT_MS)
        if (!counts) return
        for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state] ?? 0)
      }))
    },
  })

  // The exchange's undici pools (one per upstream origin), when the engine exposes them.
  type PoolStats = { connected: number; free: number; pending: number; queued: number; running: number; size: number }
  new Gauge({
    name: 'tongban_upstream_pool',
    help: 'Upstream connection pool per origin: connected, free, pending, queued, running, size',
    labelNames: ['origin', 'stat'] as const,
    registers,
    collect() {
      this.reset()
      const engine = (app as unknown as { exchange?: { upstreams?: { pools?: Map<string, { stats?: PoolStats }> } } }).exchange
      const pools = engine?.upstreams?.pools
      if (!(pools instanceof Map)) return
      for (const [origin, pool] of pools) {
        const s = pool.stats
        if (!s) continue
        for (const stat of ['connected', 'free', 'pending', 'queued', 'running', 'size'] as const) this.set({ origin, stat }, s[stat])
      }
    },
  })

  let calendarDays: (() => number) | undefined
  new Gauge({
    name: 'tongban_calendar_days_covered',
    help: 'Days from today (included) for which the holiday calendar holds a complete year (a State Council notice); below policy.calendarWarnDays the operator is warned',
    registers,
    collect() {
      if (calendarDays) this.set(calendarDays())
    },
  })
  new Gauge({
    name: 'tongban_draining',
    help: '1 while this replica drains after SIGTERM (/readyz 503, still serving; http.drainMs)',
    registers,
    collect() {
      this.set(app.hasDecorator('draining') && app.draining() ? 1 : 0)
    },
  })
  new Gauge({
    name: 'tongban_redis_up',
    help: '1 when the shared Redis connection is ready',
    registers,
    collect() {
      this.set(app.redis?.status === 'ready' ? 1 : 0)
    },
  })
  new Gauge({
    name: 'tongban_pg_pool_connections',
    help: 'PostgreSQL pool: total, idle and waiting clients',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const db = app.db
      if (!db) return
      this.set({ state: 'total' }, db.totalCount)
      this.set({ state: 'idle' }, db.idleCount)
      this.set({ state: 'waiting' }, db.waitingCount)
    },
  })
  new Gauge({
    name: 'tongban_pg_pool_max',
    help: 'PostgreSQL pool size limit',
    registers,
    collect() {
      this.set(app.config.postgres.poolSize)
    },
  })

  return {
    registry,
    request(l, seconds) {
      requests.inc(l)
      latency.observe({ method: l.method, route: l.route, resource: l.resource, service: l.service, outcome: l.outcome }, seconds)
    },
    auditBatch(size, ms, ok) {
      const result = ok ? 'ok' : 'failed'
      auditBatches.inc({ result })
      auditRecords.inc({ result }, size)
      if (ok) {
        auditSize.observe(size)
        auditSeal.observe(ms / 1000)
      }
    },
    auditChainCut(chain, cut) {
      chainCut.set({ chain }, cut ? 1 : 0)
    },
    batchItem(labels, seconds) {
      batchItems.inc(labels)
      batchItemLatency.observe({ resource: labels.resource, operation: labels.operation }, seconds)
    },
    upstreamError(upstream, code) {
      upstreamErrors.inc({ upstream, code })
    },
    upstreamCircuit(upstream, state) {
      circuit.set({ upstream }, CIRCUIT_VALUE[state])
    },
    watchQueue(name, queue) {
      queues.set(name, queue)
    },
    watchCalendar(daysCovered) {
      calendarDays = daysCovered
    },
  }

}

/** Loopback socket addresses: 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export const isLoopback = (ip: string | undefined): boolean =>
  !!ip && (ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.'))

const sha256 = (s: string) => createHash('sha256').update(s).digest()

export default fp(
  async function metricsPlugin(app) {
    const metrics = createMetrics(app)
    app.decorate('metrics', metrics)

    // Catalogue lookups for labels: the resource code is bounded by the catalogue, and so
    // is the service; anything else (a typo in a URL) is not a label value.
    const describe = (resource: string | undefined): { resource: string; service: string; upstream?: string } => {
      if (!resource) return { resource: '', service: '' }
      const catalog = (app as unknown as { catalog?: { get(code: string): { service?: { verifyService?: string; upstream?: { name: string } } } | undefined } }).catalog
      const r = catalog?.get(resource)
      if (!r) return { resource: '', service: '' }
      return { resource, service: r.service?.verifyService ?? '', upstream: r.service?.upstream?.name }
    }

    // Callback-style (nothing is awaited): an async hook costs a promise per request.
    app.addHook('onResponse', (request: FastifyRequest, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched'
      if (route === '/metrics') return done()
      const audit = request.audit ?? {}
      const { resource, service, upstream } = describe(audit.resource)
      const outcome = outcomeOf(reply.statusCode)
      const code = reply.statusCode >= 400 ? (audit.reason ?? statusFallback(reply.statusCode)) : ''
      const operation = resource ? (audit.operation ?? '') : ''
      metrics.request({ method: request.method, route, status: String(reply.statusCode), resource, operation, service, outcome, code }, reply.elapsedTime / 1000)
      if (upstream && code.startsWith('UPSTREAM_')) metrics.upstreamError(upstream, code)
      done()
    })

    const token = app.config.metrics.token
    const tokenHash = token ? sha256(token) : null
    app.get('/metrics', {
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics (text exposition format)',
        description:
          'Open to loopback clients when TONGBAN_METRICS_TOKEN is not set; with it set, requires `Authorization: Bearer <token>` ' +
          'from any address. Not an OAuth token: Prometheus scrapes with a static bearer token.',
        security: [{ metricsToken: [] }],
        response: {
          200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } },
          ...problemResponses(401, 403),
        },
      },
    }, async (request, reply) => {
      if (tokenHash) {
        const m = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
        if (!m) throw new Problem(401, 'AUTH_TOKEN_MISSING', 'the metrics token is required (Authorization: Bearer …)')
        if (!timingSafeEqual(sha256(m[1]), tokenHash)) throw new Problem(401, 'AUTH_TOKEN_INVALID', 'wrong metrics token')
      } else if (!isLoopback(request.socket.remoteAddress)) {
        throw new Problem(403, 'METRICS_LOOPBACK_ONLY', 'metrics are served to loopback clients only; set TONGBAN_METRICS_TOKEN to scrape from elsewhere')
      }
      reply.type(metrics.registry.contentType)
      return metrics.registry.metrics()
    })
  },
  { name: 'metrics', dependencies: ['stores'] },
)
