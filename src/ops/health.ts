// Liveness and readiness for the operator and the load balancer.
import fp from 'fastify-plugin'

const readiness = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not-ready'] },
    postgres: { type: 'string', enum: ['ok', 'unavailable'] },
    redis: { type: 'string', enum: ['ok', 'unavailable'] },
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
        summary: 'Readiness: PostgreSQL and Redis reachable',
        description: 'A load balancer sends traffic only while this answers 200. 503 names what is unavailable.',
        response: { 200: readiness, 503: { ...readiness, description: 'not ready', examples: [{ status: 'not-ready', postgres: 'unavailable', redis: 'ok' }] } },
      },
    }, async (_req, reply) => {
      const [pg, redis] = await Promise.all([
        app.db.query('SELECT 1').then(() => 'ok', () => 'unavailable'),
        app.redis.ping().then(() => 'ok', () => 'unavailable'),
      ])
      const ready = pg === 'ok' && redis === 'ok'
      reply.code(ready ? 200 : 503)
      return { status: ready ? 'ready' : 'not-ready', postgres: pg, redis }
    })
  },
  { name: 'health', dependencies: ['stores'] },
)
