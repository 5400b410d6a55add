// BullMQ for one gateway node (DESIGN §7): the `deadlines` queue (application reminders and
// escalations, grant expiry) and the worker that runs its jobs.
//
// Connections: BullMQ gets its own ioredis connections, never the app's client (that one has
// a keyPrefix, which BullMQ refuses, and fails fast for the request path). Keys are
// namespaced with BullMQ's own `prefix` option (`<prefix>:deadlines:…`), so nodes and test
// runs sharing one Redis never collide.
// - The queue's connection (used by request handlers to schedule and cancel jobs) retries a
//   command once; the scheduling calls bound their wait (timeoutMs, default 2 s, see
//   deadlines.ts) and reject with JobsUnavailableError, so a request never hangs on BullMQ.
// - The worker's connection has `maxRetriesPerRequest: null`, as BullMQ requires for
//   blocking commands; it reconnects for ever in the background.
import type { EventEmitter } from 'node:events'
import { Queue, Worker } from 'bullmq'
import type { DefaultJobOptions } from 'bullmq'
import type { RedisOptions } from 'ioredis'
import { DEADLINES_QUEUE, deadlineProcessor } from '../policy/deadlines.js'
import { connectionErrorLog, runWhenReady } from './lifecycle.js'
import type { DeadlineHandlers, DeadlineJobData } from '../policy/deadlines.js'

/** The subset of a pino / Fastify logger used here. */
export interface JobsLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface JobsOptions {
  redisUrl: string
  /** BullMQ key prefix, e.g. `tongban:<schema>`; no trailing ':'. */
  prefix: string
  handlers: DeadlineHandlers
  log: JobsLogger
  /** Jobs run at once by this replica's worker (default 4). */
  concurrency?: number
  /** Overrides of the default job options (tests use a shorter backoff). */
  defaultJobOptions?: DefaultJobOptions
  /** close() waits this long (ms) for running jobs before dropping the connections (default 10000). */
  closeTimeoutMs?: number
}

export interface Jobs {
  deadlines: Queue<DeadlineJobData, void, string>
  worker: Worker<DeadlineJobData, void, string>
  /** Stop taking jobs, wait for running ones, close the connections. Idempotent. */
  close(): Promise<void>
}

const DAY_S = 86_400

/** attempts 5 with exponential backoff from 1 s (1, 2, 4, 8 s); bounded retention. */
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 30 * DAY_S, count: 10_000 },
  removeOnFail: { age: 90 * DAY_S, count: 10_000 },
}

/** What close() needs of an ioredis client (through BullMQ's wrapper, which forwards to it). */
type RedisLike = { status: string; disconnect(): void }

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> => {
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))
  return Promise.race([p, gaveUp]).finally(() => clearTimeout(timer))
}

const PREFIX = /^[A-Za-z0-9._:-]{1,100}$/

export function createJobs(opts: JobsOptions): Jobs {
  const { redisUrl, prefix, handlers, log } = opts
  if (!PREFIX.test(prefix) || prefix.endsWith(':')) {
    throw new Error(`jobs: prefix ${JSON.stringify(prefix)} must be 1-100 of A-Z a-z 0-9 . _ : - and not end with ':'`)
  }
  const base: RedisOptions = { connectTimeout: 2000 }

  const onRedisError = connectionErrorLog(log, 'jobs')

  // Connection options, not clients: each Queue and Worker then owns dedicated ioredis
  // connections (the worker a second one for its blocking commands) and BullMQ closes them
  // itself, also when close() comes while they are still connecting.
  const queueConnection = {
    ...base,
    url: redisUrl,
    // Offline queueing stays on: with it off BullMQ's own connection emits an unhandled
    // error on close. Scheduling calls are bounded by their own timeouts (deadlines.ts).
    maxRetriesPerRequest: 1,
    connectionName: `${prefix}:queue`,
  }
  const workerConnection = {
    ...base,
    url: redisUrl,
    maxRetriesPerRequest: null,
    connectionName: `${prefix}:worker`,
  }

  const deadlines = new Queue<DeadlineJobData, void, string>(DEADLINES_QUEUE, {
    connection: queueConnection,
    prefix,
    defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...opts.defaultJobOptions },
  })
  deadlines.on('error', onRedisError('queue'))

  const worker = new Worker<DeadlineJobData, void, string>(DEADLINES_QUEUE, deadlineProcessor(handlers), {
    connection: workerConnection,
    prefix,
    concurrency: opts.concurrency ?? 4,
    // Started below once connected: with autorun, a close() during the first connection
    // attempt can leave BullMQ's stalled-job timer (30 s) holding the process open.
    autorun: false,
  })
  worker.on('error', onRedisError('worker'))
  let closing: Promise<void> | undefined
  runWhenReady(worker, log, 'jobs', () => closing !== undefined)
  worker.on('failed', (job, err) => {
    if (!job) return
    const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError'
    log[final ? 'error' : 'warn'](
      { err, job: { id: job.id, kind: job.name, attemptsMade: job.attemptsMade } },
      final ? 'jobs: job failed for good' : 'jobs: job failed, will retry',
    )
  })
  worker.on('completed', (job) => log.info({ job: { id: job.id, kind: job.name } }, 'jobs: job done'))

  // The connections that have come up, to judge at close() whether Redis is reachable.
  const clients = new Map<'queue' | 'worker' | 'blocking', RedisLike>()
  const track = (role: 'queue' | 'worker' | 'blocking', p: Promise<unknown>) =>
    p.then((c) => void clients.set(role, c as RedisLike), () => {})
  track('queue', deadlines.client)
  track('worker', worker.client)
  // BullMQ keeps the worker's blocking connection protected; it is reached only to close it.
  const blocking = (worker as unknown as { blockingConnection?: { client: Promise<unknown> } }).blockingConnection
  if (blocking) track('blocking', blocking.client)

  // With Redis reachable, close() lets running jobs finish, up to closeTimeoutMs. With Redis
  // known to be gone it does not wait for them (nothing could be recorded). A job that has
  // not finished is not lost: its lock expires and another replica (or this one after a
  // restart) runs it again as a stalled job, which is why handlers are idempotent.
  //
  // When close() gives up (Redis lost during shutdown), it drops the queue's and the blocking
  // connections but leaves the worker's main connection alone: BullMQ is still trying to
  // record the last jobs' results on it and retries them without pause while closing, so
  // ending that connection would spin the CPU. BullMQ finishes closing by itself if Redis
  // comes back; a process that is shutting down should simply exit after close() returns.
  const close = () =>
    (closing ??= (async () => {
      const healthy = clients.size === (blocking ? 3 : 2) && [...clients.values()].every((c) => c.status === 'ready')
      const done = Promise.allSettled([worker.close(!healthy), deadlines.close()])
      const outcome = await within(done, opts.closeTimeoutMs ?? 10_000)
      // BullMQ 5 removes all listeners from its connection wrappers on close, yet a wrapper
      // closed while still connecting later emits its failed initialisation as 'error' — with
      // no listener, a crash. Keep one listener on each so that late error is dropped.
      for (const owner of [deadlines, worker] as unknown as Record<string, unknown>[]) {
        for (const key of ['connection', 'blockingConnection']) {
          const conn = owner[key] as EventEmitter | undefined
          if (conn && typeof conn.on === 'function' && conn.listenerCount('error') === 0) conn.on('error', () => {})
        }
      }
      if (outcome === 'timeout') {
        log.warn({}, 'jobs: close timed out (Redis unreachable?); the process should exit')
        for (const role of ['queue', 'blocking'] as const) {
          const c = clients.get(role)
          if (c && c.status !== 'end') c.disconnect()
        }
      } else {
        for (const r of outcome) if (r.status === 'rejected') log.warn({ err: r.reason }, 'jobs: error while closing')
      }
    })())

  return { deadlines, worker, close }
}
