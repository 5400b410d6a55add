// Liveness and readiness for the operator and the load balancer.
import fp from 'fastify-plugin'
import { ChainCutError } from '../audit/high-water.js'

const readiness = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not-ready'] },
    postgres: { type: 'string', enum: ['ok', 'unavailable'] },
    redis: { type: 'string', enum: ['ok', 'unavailable'] },
    audit: { type: 'string', enum: ['ok', 'cut'], description: '`cut`: the tail of this node\'s audit chain was deleted from PostgreSQL; sealing stopped (docs/audit.md)' },
    detail: { type: 'string', description: 'Why not ready, when it is the audit chain' },
  },
  examples: [{ status: 'ready', postgres: 'ok', redis: 'ok' }],
}

export default fp(
  async function health(app) {
    app.get('/healthz', {
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process answers (no dependency checked)',
        response: { 200: { type: 'object', properties: { status: { type: 'string', const: 'ok' } }, examples: [{ status: 'ok' }] } },
      },
    }, async () => ({ status: 'ok' }))
    app.get('/readyz', {
      schema: {
        tags: ['ops'],
        summary: 'Readiness: PostgreSQL and Redis reachable, the audit chain not cut',
        description: 'A load balancer sends traffic only while this answers 200. 503 names what is unavailable; a cut audit chain (its committed head behind the node\'s high-water mark) is `audit: cut` with a `detail` naming the chain, until an operator acknowledges it.',
        response: { 200: readiness, 503: { ...readiness, description: 'not ready', examples: [{ status: 'not-ready', postgres: 'unavailable', redis: 'ok' }] } },
      },
    }, async (_req, reply) => {
      // The chain's head against its high-water mark doubles as the PostgreSQL probe.
      const [pg, redis] = await Promise.all([
        app.auditTail.check().then(() => 'ok', (e) => (e instanceof ChainCutError ? 'ok' : 'unavailable')),
        app.redis.ping().then(() => 'ok', () => 'unavailable'),
      ])
      const cut = app.auditTail.current()
      const ready = pg === 'ok' && redis === 'ok' && !cut
      reply.code(ready ? 200 : 503)
      return { status: ready ? 'ready' : 'not-ready', postgres: pg, redis, audit: cut ? 'cut' : 'ok', ...(cut ? { detail: cut.detail } : {}) }
    })
  },
  { name: 'health', dependencies: ['stores', 'audit'] },
)
