// Decorates the app with its PostgreSQL pool and Redis client; closes them last.
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createPool, createReadPool, type Db } from './postgres.js'
import { createRedis } from './redis.js'
import { InvalidationBus } from './pubsub.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    /** Auditor queries: the read replica (TONGBAN_PG_READ_URL) when there is one, else `db`. */
    readDb: Db
    redis: Redis
    bus: InvalidationBus
  }
}

export default fp(
  async function stores(app) {
    const db = createPool(app.config.postgres, `tongban-${app.config.replicaId}`, {
      // Each change of the write host is worth a line: a failover, or the primary gone.
      onPrimary: (primary, detail) =>
        primary ? app.log.warn({ primary, detail }, 'PostgreSQL: writing to this host') : app.log.error({ detail }, 'PostgreSQL: lost the write host; looking again'),
    })
    const readDb = createReadPool(app.config.postgres, `tongban-${app.config.replicaId}`)
    const redis = createRedis(app.config.redis)
    // Start even if Redis is down: readiness says so, and calls that need it fail closed.
    await redis.connect().catch((e) => app.log.warn({ err: e }, 'Redis not reachable at start'))
    const bus = new InvalidationBus(redis, app.config.redis.url, app.config.redis.prefix)
    await bus.start()
    app.decorate('db', db)
    app.decorate('readDb', readDb ?? db)
    app.decorate('redis', redis)
    app.decorate('bus', bus)
    app.addHook('onClose', async () => {
      bus.close()
      redis.disconnect()
      await Promise.all([db.end(), readDb?.end()])
    })
  },
  { name: 'stores' },
)
