// Decorates the app with its PostgreSQL pool and Redis client; closes them last.
import fp from 'fastify-plugin'
import { createPool, createReadPool, type Db } from './postgres.js'
import { createRedis, replicationOf, type RedisClient, type Replication } from './redis.js'
import { InvalidationBus } from './pubsub.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    /** Auditor queries: the read replica (TONGBAN_PG_READ_URL) when there is one, else `db`. */
    readDb: Db
    /** Any topology (standalone, Sentinel, Cluster): src/stores/redis.ts. */
    redis: RedisClient
    /**
     * Writes that must survive a failover (quota increments, replay nonces, revocation
     * markers) go through writeReplicated on this client: a connection of its own when
     * replicas > 0 (WAIT blocks its connection), else the app's client.
     */
    replicatedWrites: Replication & { client: RedisClient }
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
    const replication = replicationOf(app.config.redis)
    let acked = redis
    if (replication.replicas > 0) {
      acked = createRedis(app.config.redis)
      await acked.connect().catch(() => {})
    }
    const bus = new InvalidationBus(redis, app.config.redis)
    await bus.start()
    app.decorate('db', db)
    app.decorate('readDb', readDb ?? db)
    app.decorate<RedisClient>('redis', redis)
    app.decorate('replicatedWrites', { ...replication, client: acked })
    app.decorate('bus', bus)
    app.addHook('onClose', async () => {
      bus.close()
      redis.disconnect()
      if (acked !== redis) acked.disconnect()
      await Promise.all([db.end(), readDb?.end()])
    })
  },
  { name: 'stores' },
)
