// Catalogue sync, queue side (docs/architecture.md: cross-node messages on BullMQ, with retries and
// backoff). Every change of what this node would publish — its own catalogue (bus topic
// `catalog`), a changed snapshot from a child, the node coming up, and a slow periodic
// safety net — adds a `catalog.publish` job; the worker sends the current snapshot to the
// parent over mTLS. Failures retry with exponential backoff; jobs live in Redis, so a
// restart loses none. The snapshot is read when the job runs, so jobs that pile up while
// the parent is away all send the newest state, and the parent ignores duplicates.
//
// Connections, prefix and close as every pair (src/queues/factory.ts).
import { createQueuePair, type JobsLogger, type RedisTarget } from '../queues/factory.js'

export const TIERS_QUEUE = 'tiers'
export const JOB_PUBLISH = 'catalog.publish'

export interface SyncJobsOptions {
  redis: RedisTarget
  /** BullMQ key prefix, e.g. `tongban:bull`. */
  prefix: string
  attempts: number
  backoffMs: number
  log: JobsLogger
  publish(reason: string): Promise<void>
}

export interface SyncJobs {
  /** Adds a publication job (never throws: a queue outage is logged, the periodic run catches up). */
  request(reason: string): Promise<void>
  close(): Promise<void>
}

export function createSyncJobs(o: SyncJobsOptions): SyncJobs {
  const pair = createQueuePair<{ reason?: string }, void, string>({
    name: TIERS_QUEUE,
    redis: o.redis,
    prefix: o.prefix,
    clientName: 'tiers',
    label: 'tiers sync',
    log: o.log,
    processor: async (job) => {
      if (job.name !== JOB_PUBLISH) return
      await o.publish(String(job.data?.reason ?? 'unknown'))
    },
    // One publication at a time per replica: the snapshot is whole, parallel ones add nothing.
    concurrency: 1,
    defaultJobOptions: {
      attempts: o.attempts,
      backoff: { type: 'exponential', delay: o.backoffMs },
      removeOnComplete: { count: 100 },
      removeOnFail: { count: 1000 },
    },
    closeTimeoutMs: 5000,
  })
  pair.worker.on('failed', (job, err) => {
    if (!job) return
    const final = job.attemptsMade >= (job.opts.attempts ?? 1)
    o.log[final ? 'error' : 'warn']({ err: { message: err.message }, job: { id: job.id, attemptsMade: job.attemptsMade } }, final ? 'tiers sync: publication failed for good' : 'tiers sync: publication failed, will retry')
  })

  return {
    async request(reason) {
      try {
        await pair.add(JOB_PUBLISH, { reason })
      } catch (err) {
        o.log.warn({ err: { message: (err as Error).message }, reason }, 'tiers sync: could not queue a publication')
      }
    },
    close: pair.close,
  }
}
