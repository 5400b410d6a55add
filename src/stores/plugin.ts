// Decorates the app with its PostgreSQL pool and Redis client; closes them last.
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createPool, type Db } from './postgres.js'
import { createRedis } from './redis.js'
import { InvalidationBus } from './pubsub.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    redis: Redis
    bus: InvalidationBus
  }
}

export default fp(
  async function stores(app) {
    const db = createPool(app.config.postgres, `tongban-${app.config.replicaId}`)
    const redis = createRedis(app.config.redis)
    // Start even if Redis is down: readiness says so, and calls that need it fail closed.
    await redis.connect().catch((e) => app.log.warn({ err: e }, 'Redis not reachable at start'))
    const bus = new InvalidationBus(redis, app.config.redis.url, app.config.redis.prefix)
    await bus.start()
    app.decorate('db', db)
    app.decorate('redis', redis)
    app.decorate('bus', bus)
    app.addHook('onClose', async () => {
      bus.close()
      redis.disconnect()
      await db.end()
    })
  },
  { name: 'stores' },
)
