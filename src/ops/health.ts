// Liveness and readiness for the operator and the load balancer.
import fp from 'fastify-plugin'
import { ChainCutError } from '../audit/high-water.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** SIGTERM behind a load balancer (src/server.ts): /readyz answers 503 from now on, requests are still served. */
    startDraining(): void
    draining(): boolean
  }
}

const readiness = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not-ready', 'draining'], description: '`draining`: the replica is shutting down (SIGTERM, http.drainMs); it still serves what arrives, a load balancer sends it nothing new' },
    postgres: { type: 'string', enum: ['ok', 'unavailable'] },
    redis: { type: 'string', enum: ['ok', 'unavailable'] },
    audit: { type: 'string', enum: ['ok', 'cut'], description: '`cut`: the tail of this node\'s audit chain was deleted from PostgreSQL; sealing stopped (docs/audit.md)' },
    detail: { type: 'string', description: 'Why not ready, when it is the audit chain' },
    calendar: {
      type: 'object',
      description: 'The holiday calendar: `warning` (still ready) when it is complete for fewer than policy.calendarWarnDays days ahead; add the next State Council notice to the holidays file',
      properties: {
        status: { type: 'string', enum: ['ok', 'warning'] },
        daysCovered: { type: 'integer', description: 'days from today (included) with a complete year of holidays' },
        coveredUntil: { type: ['string', 'null'], format: 'date' },
        warnDays: { type: 'integer' },
      },
    },
  },
  examples: [{ status: 'ready', postgres: 'ok', redis: 'ok' }],
}

export default fp(
  async function health(app) {
    let drainingSince = 0
    app.decorate('startDraining', () => {
      drainingSince ||= Date.now()
    })
    app.decorate('draining', () => drainingSince > 0)
    app.get('/healthz', {
      config: { probe: true },
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process answers (no dependency checked)',
        response: { 200: { type: 'object', properties: { status: { type: 'string', const: 'ok' } }, examples: [{ status: 'ok' }] } },
      },
    }, async () => ({ status: 'ok' }))
    app.get('/readyz', {
      config: { probe: true },
      schema: {
        tags: ['ops'],
        summary: 'Readiness: PostgreSQL and Redis reachable, the audit chain not cut, not draining',
        description: 'A load balancer sends traffic only while this answers 200. 503 names what is unavailable, or says `draining` (the replica got SIGTERM and waits http.drainMs for the load balancer to notice before it closes); `calendar` warns (still 200) when the holiday calendar is complete for fewer than policy.calendarWarnDays days ahead; a cut audit chain (its committed head behind the node\'s high-water mark) is `audit: cut` with a `detail` naming the chain, until an operator acknowledges it.',
        response: { 200: readiness, 503: { ...readiness, description: 'not ready', examples: [{ status: 'not-ready', postgres: 'unavailable', redis: 'ok' }] } },
      },
    }, async (_req, reply) => {
      // Draining first and without probing: the answer the load balancer waits for.
      if (drainingSince) {
        reply.code(503)
        return { status: 'draining' }
      }
      // A short calendar makes deadlines wrong later, not requests fail now: a warning only.
      const calendar = () => {
        if (!app.hasDecorator('calendarCoverage')) return {}
        const c = app.calendarCoverage()
        if (!Number.isFinite(c.daysCovered)) return {}
        return { calendar: { status: c.warning ? 'warning' : 'ok', daysCovered: c.daysCovered, coveredUntil: c.coveredUntil, warnDays: c.warnDays } }
      }
      // The chain's head against its high-water mark doubles as the PostgreSQL probe.
      const [pg, redis] = await Promise.all([
        app.auditTail.check().then(() => 'ok', (e) => (e instanceof ChainCutError ? 'ok' : 'unavailable')),
        app.redis.ping().then(() => 'ok', () => 'unavailable'),
      ])
      const cut = app.auditTail.current()
      const ready = pg === 'ok' && redis === 'ok' && !cut
      reply.code(ready ? 200 : 503)
      return { status: ready ? 'ready' : 'not-ready', postgres: pg, redis, audit: cut ? 'cut' : 'ok', ...(cut ? { detail: cut.detail } : {}), ...calendar() }
    })
  },
  { name: 'health', dependencies: ['stores', 'audit'] },
)
