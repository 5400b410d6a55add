// The `batches` BullMQ queue: one job per chunk of a batch (job id `b-<batch>-<chunk>`, so
// enqueueing twice is harmless), and this replica's worker for it; connections, prefix and
// close as every pair (src/queues/factory.ts).
//
// A killed worker's running chunk keeps its lock until `lockMs` has passed; then another
// worker (or this one restarted) takes it over as a stalled job and skips the items that
// already have results. A graceful stop puts the running chunks back (delayed by 100 ms)
// instead of waiting for all their items.
import { DelayedError, type Job, type Queue, type Worker } from 'bullmq'
import { createQueuePair, type JobsLogger, type RedisTarget } from '../queues/factory.js'
import type { BatchProcessor, ChunkJobData } from './worker.js'

export const BATCHES_QUEUE = 'batches'
export const CHUNK_JOB = 'chunk'

export const chunkJobId = (batchId: string, chunk: number) => `b-${batchId}-${chunk}`

export interface BatchQueueOptions {
  redis: RedisTarget
  prefix: string
  log: JobsLogger
  /** null: this replica enqueues but runs no worker. */
  processor: BatchProcessor | null
  concurrency: number
  lockMs: number
  closeTimeoutMs?: number
}

export interface BatchQueue {
  queue: Queue<ChunkJobData, string, string>
  worker: Worker<ChunkJobData, string, string> | null
  enqueue(batchId: string, chunks: number): Promise<void>
  close(): Promise<void>
}

const DAY_S = 86_400

export function createBatchQueue(opts: BatchQueueOptions): BatchQueue {
  const { log } = opts
  const processor = opts.processor
  const pair = createQueuePair<ChunkJobData, string, string>({
    name: BATCHES_QUEUE,
    redis: opts.redis,
    prefix: opts.prefix,
    clientName: 'batches',
    label: 'batches',
    log,
    processor: processor && (async (job: Job<ChunkJobData, string, string>, token?: string) => {
      const outcome = await processor.processChunk(job.data, pair.isClosing)
      if (outcome === 'interrupted' && token) {
        // Back to the queue at once for another replica (or this one after restart),
        // without using up an attempt.
        await job.moveToDelayed(Date.now() + 100, token)
        throw new DelayedError()
      }
      return outcome
    }),
    concurrency: opts.concurrency,
    // A chunk may be caught by several worker deaths in a row; it is idempotent anyway.
    worker: { lockDuration: opts.lockMs, stalledInterval: opts.lockMs, maxStalledCount: 50 },
    defaultJobOptions: {
      // Infrastructure failures (audit or quota store away) throw; items never do.
      attempts: 12,
      backoff: { type: 'exponential', delay: 1000 },
      // A completed chunk has a result for every item, so its retained job id rightly
      // turns a repeated enqueue into a no-op.
      removeOnComplete: { age: 2 * DAY_S, count: 200_000 },
      removeOnFail: { age: 30 * DAY_S, count: 100_000 },
    },
    closeTimeoutMs: opts.closeTimeoutMs,
  })
  const { queue, worker } = pair
  worker?.on('failed', (job, err) => {
    if (!job || err instanceof DelayedError || err.name === 'DelayedError') return
    const final = job.attemptsMade >= (job.opts.attempts ?? 1)
    log[final ? 'error' : 'warn']({ err, job: { id: job.id, batch: job.data.batchId, chunk: job.data.chunk, attemptsMade: job.attemptsMade } }, final ? 'batches: chunk failed for good' : 'batches: chunk failed, will retry')
  })

  return {
    queue,
    worker,
    async enqueue(batchId, chunks) {
      const jobs = Array.from({ length: chunks }, (_, c) => ({ name: CHUNK_JOB, data: { batchId, chunk: c }, opts: { jobId: chunkJobId(batchId, c) } }))
      for (let i = 0; i < jobs.length; i += 500) await queue.addBulk(jobs.slice(i, i + 500))
    },
    close: pair.close,
  }
}
