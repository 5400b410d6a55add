// Liveness and readiness for the operator and the load balancer.
import fp from 'fastify-plugin'

export default fp(
  async function health(app) {
    app.get('/healthz', { schema: { tags: ['ops'], summary: 'Liveness' } }, async () => ({ status: 'ok' }))
    app.get('/readyz', { schema: { tags: ['ops'], summary: 'Readiness: PostgreSQL and Redis reachable' } }, async (_req, reply) => {
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
