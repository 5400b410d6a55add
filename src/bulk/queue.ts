// The `batches` BullMQ queue: one job per chunk of a batch (job id `b-<batch>-<chunk>`, so
// enqueueing twice is harmless), and this replica's worker for it. Same connection rules as
// src/jobs/queues.ts: dedicated ioredis connections per Queue and Worker, BullMQ's own key
// prefix per node (and per test run).
//
// A killed worker's running chunk keeps its lock until `lockMs` has passed; then another
// worker (or this one restarted) takes it over as a stalled job and skips the items that
// already have results. A graceful stop puts the running chunks back (delayed by 100 ms)
// instead of waiting for all their items.
import { DelayedError, Queue, Worker, type Job } from 'bullmq'
import type { RedisOptions } from 'ioredis'
import type { JobsLogger } from '../queues/deadline-queue.js'
import { connectionErrorLog } from '../queues/lifecycle.js'
import type { BatchProcessor, ChunkJobData } from './worker.js'

export const BATCHES_QUEUE = 'batches'
export const CHUNK_JOB = 'chunk'

export const chunkJobId = (batchId: string, chunk: number) => `b-${batchId}-${chunk}`

export interface BatchQueueOptions {
  redisUrl: string
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

/**
 * BullMQ 5 emits an 'error' on its RedisConnection when the connection's initialisation
 * fails after close() has already removed every listener (a Queue or Worker closed while
 * still connecting: a short-lived app, a slow machine) — an unhandled 'error' event that
 * kills the process. Such an error has nobody left to tell; drop it instead of crashing.
 */
export function guardClosedConnectionErrors(owner: unknown): void {
  const o = owner as { connection?: unknown; blockingConnection?: unknown }
  for (const conn of [o.connection, o.blockingConnection]) {
    const c = conn as { emit?: (event: string | symbol, ...args: unknown[]) => boolean; listenerCount?: (e: string) => number } | undefined
    if (!c?.emit || !c.listenerCount) continue
    const emit = c.emit.bind(c)
    c.emit = (event: string | symbol, ...args: unknown[]) => (event === 'error' && c.listenerCount!('error') === 0 ? false : emit(event, ...args))
  }
}

export function createBatchQueue(opts: BatchQueueOptions): BatchQueue {
  const { redisUrl, prefix, log } = opts
  const base: RedisOptions = { connectTimeout: 2000 }
  const onRedisError = connectionErrorLog(log, 'batches')

  const queue = new Queue<ChunkJobData, string, string>(BATCHES_QUEUE, {
    connection: { ...base, url: redisUrl, maxRetriesPerRequest: 1, connectionName: `${prefix}:batches-queue` },
    prefix,
    defaultJobOptions: {
      // Infrastructure failures (audit or quota store away) throw; items never do.
      attempts: 12,
      backoff: { type: 'exponential', delay: 1000 },
      // A completed chunk has a result for every item, so its retained job id rightly
      // turns a repeated enqueue into a no-op.
      removeOnComplete: { age: 2 * DAY_S, count: 200_000 },
      removeOnFail: { age: 30 * DAY_S, count: 100_000 },
    },
  })
  queue.on('error', onRedisError('queue'))
  guardClosedConnectionErrors(queue)

  let closing: Promise<void> | undefined
  let stopping = false
  let worker: Worker<ChunkJobData, string, string> | null = null
  type Client = { status: string; disconnect(): void }
  const clients = new Map<'queue' | 'worker' | 'blocking', Client>()
  let expectedClients = 1
  const track = (role: 'queue' | 'worker' | 'blocking', p: Promise<unknown>) => p.then((c) => void clients.set(role, c as Client), () => {})
  track('queue', queue.waitUntilReady())

  if (opts.processor) {
    const processor = opts.processor
    worker = new Worker<ChunkJobData, string, string>(
      BATCHES_QUEUE,
      async (job: Job<ChunkJobData, string, string>, token?: string) => {
        const outcome = await processor.processChunk(job.data, () => stopping)
        if (outcome === 'interrupted' && token) {
          // Back to the queue at once for another replica (or this one after restart),
          // without using up an attempt.
          await job.moveToDelayed(Date.now() + 100, token)
          throw new DelayedError()
        }
        return outcome
      },
      {
        connection: { ...base, url: redisUrl, maxRetriesPerRequest: null, connectionName: `${prefix}:batches-worker` },
        prefix,
        concurrency: opts.concurrency,
        lockDuration: opts.lockMs,
        stalledInterval: opts.lockMs,
        // A chunk may be caught by several worker deaths in a row; it is idempotent anyway.
        maxStalledCount: 50,
        autorun: false,
      },
    )
    worker.on('error', onRedisError('worker'))
    guardClosedConnectionErrors(worker)
    worker.on('failed', (job, err) => {
      if (!job || err instanceof DelayedError || err.name === 'DelayedError') return
      const final = job.attemptsMade >= (job.opts.attempts ?? 1)
      log[final ? 'error' : 'warn']({ err, job: { id: job.id, batch: job.data.batchId, chunk: job.data.chunk, attemptsMade: job.attemptsMade } }, final ? 'batches: chunk failed for good' : 'batches: chunk failed, will retry')
    })
    const w = worker
    w.waitUntilReady().then(
      () => {
        if (!closing) w.run().catch((err) => log.error({ err }, 'batches: worker stopped'))
      },
      (err) => {
        if (!closing) log.error({ err }, 'batches: worker could not connect')
      },
    )
    track('worker', w.waitUntilReady())
    expectedClients++
    const blocking = (w as unknown as { blockingConnection?: { client: Promise<unknown> } }).blockingConnection
    if (blocking) {
      track('blocking', blocking.client)
      expectedClients++
    }
  }

  return {
    queue,
    worker,
    async enqueue(batchId, chunks) {
      const jobs = Array.from({ length: chunks }, (_, c) => ({ name: CHUNK_JOB, data: { batchId, chunk: c }, opts: { jobId: chunkJobId(batchId, c) } }))
      for (let i = 0; i < jobs.length; i += 500) await queue.addBulk(jobs.slice(i, i + 500))
    },
    close() {
      return (closing ??= (async () => {
        stopping = true
        const healthy = clients.size === expectedClients && [...clients.values()].every((c) => c.status === 'ready')
        // With Redis gone nothing could be recorded anyway: do not hold the shutdown long.
        const limit = healthy ? (opts.closeTimeoutMs ?? 10_000) : Math.min(2000, opts.closeTimeoutMs ?? 10_000)
        let timer: NodeJS.Timeout | undefined
        const gaveUp = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), limit)
        })
        const done = Promise.allSettled([worker?.close(!healthy), queue.close()])
        const outcome = await Promise.race([done, gaveUp])
        clearTimeout(timer)
        if (outcome === 'timeout') {
          log.warn({}, 'batches: close timed out waiting for running chunks; they will be taken over as stalled jobs')
          // As in src/jobs/queues.ts: the worker's main connection is left alone (BullMQ keeps
          // retrying on it while closing; ending it would spin); the process is exiting anyway.
          for (const role of ['queue', 'blocking'] as const) {
            const c = clients.get(role)
            if (c && c.status !== 'end') c.disconnect()
          }
        }
      })())
    },
  }
}
