// Decorates the app with its PostgreSQL pool and Redis client; closes them last.
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createPool, type Db } from './postgres.js'
import { createRedis } from './redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    redis: Redis
  }
}

export default fp(
  async function stores(app) {
    const db = createPool(app.config.postgres, `tongban-${app.config.replicaId}`)
    const redis = createRedis(app.config.redis)
    // Start even if Redis is down: readiness says so, and calls that need it fail closed.
    await redis.connect().catch((e) => app.log.warn({ err: e }, 'Redis not reachable at start'))
    app.decorate('db', db)
    app.decorate('redis', redis)
    app.addHook('onClose', async () => {
      redis.disconnect()
      await db.end()
    })
  },
  { name: 'stores' },
)
