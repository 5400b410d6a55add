// Catalogue sync, queue side (DESIGN.md §7: cross-node messages on BullMQ, with retries and
// backoff). Every change of what this node would publish — its own catalogue (bus topic
// `catalog`), a changed snapshot from a child, the node coming up, and a slow periodic
// safety net — adds a `catalog.publish` job; the worker sends the current snapshot to the
// parent over mTLS. Failures retry with exponential backoff; jobs live in Redis, so a
// restart loses none. The snapshot is read when the job runs, so jobs that pile up while
// the parent is away all send the newest state, and the parent ignores duplicates.
//
// Connections follow src/jobs/queues.ts: BullMQ gets its own ioredis connections (the
// app's client has a keyPrefix), the worker one with maxRetriesPerRequest null.
import { Queue, Worker } from 'bullmq'
import type { JobsLogger } from '../queues/deadline-queue.js'
import { closeBoth, connectionErrorLog, runWhenReady, withinMs } from '../queues/lifecycle.js'

export const TIERS_QUEUE = 'tiers'
export const JOB_PUBLISH = 'catalog.publish'

export interface SyncJobsOptions {
  redisUrl: string
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
  const queue = new Queue(TIERS_QUEUE, {
    connection: { url: o.redisUrl, connectTimeout: 2000, maxRetriesPerRequest: 1, connectionName: `${o.prefix}:tiers-queue` },
    prefix: o.prefix,
    defaultJobOptions: {
      attempts: o.attempts,
      backoff: { type: 'exponential', delay: o.backoffMs },
      removeOnComplete: { count: 100 },
      removeOnFail: { count: 1000 },
    },
  })
  const quiet = connectionErrorLog(o.log, 'tiers sync')
  queue.on('error', quiet('queue'))
  const worker = new Worker(
    TIERS_QUEUE,
    async (job) => {
      if (job.name !== JOB_PUBLISH) return
      await o.publish(String(job.data?.reason ?? 'unknown'))
    },
    {
      connection: { url: o.redisUrl, connectTimeout: 2000, maxRetriesPerRequest: null, connectionName: `${o.prefix}:tiers-worker` },
      prefix: o.prefix,
      // One publication at a time per replica: the snapshot is whole, parallel ones add nothing.
      concurrency: 1,
      autorun: false,
    },
  )
  worker.on('error', quiet('worker'))
  worker.on('failed', (job, err) => {
    if (!job) return
    const final = job.attemptsMade >= (job.opts.attempts ?? 1)
    o.log[final ? 'error' : 'warn']({ err: { message: err.message }, job: { id: job.id, attemptsMade: job.attemptsMade } }, final ? 'tiers sync: publication failed for good' : 'tiers sync: publication failed, will retry')
  })
  let closing: Promise<void> | undefined
  runWhenReady(worker, o.log, 'tiers sync', () => closing !== undefined)

  return {
    async request(reason) {
      try {
        await withinMs(queue.add(JOB_PUBLISH, { reason }), 2000)
      } catch (err) {
        o.log.warn({ err: { message: (err as Error).message }, reason }, 'tiers sync: could not queue a publication')
      }
    },
    close: () => (closing ??= closeBoth(worker, queue)),
  }
}
