// Bulk verification (docs/architecture.md, README.md): the routes, the `batches` queue and, unless
// TONGBAN_BATCH_WORKER=0, this replica's worker and housekeeping. Registered after the
// audit plugin, so on shutdown the worker stops (running chunks go back to the queue)
// before the sealer seals its last batch.
import fp from 'fastify-plugin'
import { UpstreamLimits } from './limits.js'
import { BatchProcessor } from './worker.js'
import { CHUNK_JOB, chunkJobId, createBatchQueue, type BatchQueue } from './queue.js'
import { batchRoutes } from './routes.js'
import { countResults, purge, staleBatches, touch } from './store.js'
import { bullPrefix } from '../stores/redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    batches: BatchQueue
  }
}

const HOUSEKEEPING_MS = 30_000

export default fp(
  async function batches(app) {
    const { config } = app
    const limits = new UpstreamLimits(config.batch, app.redis, app.log)
    const metrics = app.hasDecorator('metrics') ? app.metrics : undefined
    // In a tier tree: items of resources owned elsewhere are relayed (worker.ts).
    const relay = app.tiers.router ?? undefined
    const processor = config.batch.worker
      ? new BatchProcessor({
          db: app.db,
          config,
          catalog: app.catalog,
          exchange: app.exchange,
          limits,
          relay,
          notes: app.answerNotes,
          metrics,
          log: app.log,
        })
      : null
    const bq = createBatchQueue({
      redis: config.redis,
      prefix: bullPrefix(config.redis),
      log: app.log,
      processor,
      concurrency: config.batch.jobConcurrency,
      lockMs: config.batch.lockMs,
    })
    app.decorate('batches', bq)
    metrics?.watchQueue('batches', bq.queue)

    // Housekeeping, on worker replicas: chunks of batches that made no progress for a while
    // are enqueued again (a lost enqueue, a chunk that failed for good), and ended batches
    // are purged after the retention period. Idempotent, so replicas may overlap.
    let timer: NodeJS.Timeout | undefined
    let running: Promise<void> | null = null
    const housekeeping = async () => {
      const idleMs = Math.max(60_000, 3 * config.batch.lockMs)
      for (const b of await staleBatches(app.db, idleMs)) {
        const chunks = Math.ceil(b.total / b.chunkSize)
        let requeued = 0
        for (let c = 0; c < chunks; c++) {
          const id = chunkJobId(b.id, c)
          const state = await bq.queue.getJobState(id)
          if (state === 'failed') {
            await (await bq.queue.getJob(id))?.retry('failed')
            requeued++
          } else if (state === 'unknown') {
            const from = c * b.chunkSize
            const to = Math.min(b.total, from + b.chunkSize) - 1
            if ((await countResults(app.db, b.id, from, to)) < to - from + 1) {
              await bq.queue.add(CHUNK_JOB, { batchId: b.id, chunk: c }, { jobId: id })
              requeued++
            }
          }
        }
        await touch(app.db, b.id)
        if (requeued) app.log.warn({ batch: b.id, requeued }, 'batches: chunks of a stalled batch queued again')
      }
      const purged = await purge(app.db, config.batch.retentionDays)
      if (purged.batches) app.log.info({ purged }, 'batches: purged ended batches past retention')
    }
    if (processor) {
      timer = setInterval(() => {
        if (running) return
        running = housekeeping()
          .catch((err) => app.log.warn({ err }, 'batches: housekeeping failed'))
          .finally(() => {
            running = null
          })
      }, HOUSEKEEPING_MS)
      timer.unref()
    }

    app.addHook('onClose', async () => {
      clearInterval(timer)
      await bq.close()
      await running
    })

    await app.register(batchRoutes, { queue: bq, relay })
  },
  { name: 'batches', dependencies: ['stores', 'auth', 'audit', 'catalog', 'policy', 'exchange'] },
)
