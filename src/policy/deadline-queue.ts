// The `deadlines` BullMQ queue of a gateway node (docs/architecture.md: application reminders and
// escalations, grant expiry) and this replica's worker for it; connections, prefix and
// close as every pair (src/queues/factory.ts). Scheduling and cancelling (deadlines.ts)
// bound their own waits and reject with JobsUnavailableError.
import type { DefaultJobOptions, Queue, Worker } from 'bullmq'
import { createQueuePair, type JobsLogger, type RedisTarget } from '../queues/factory.js'
import { DEADLINES_QUEUE, deadlineProcessor } from './deadlines.js'
import type { DeadlineHandlers, DeadlineJobData } from './deadlines.js'

export type { JobsLogger } from '../queues/factory.js'

export interface JobsOptions {
  redis: RedisTarget
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

export function createJobs(opts: JobsOptions): Jobs {
  const { log } = opts
  const pair = createQueuePair<DeadlineJobData, void, string>({
    name: DEADLINES_QUEUE,
    redis: opts.redis,
    prefix: opts.prefix,
    label: 'jobs',
    log,
    processor: deadlineProcessor(opts.handlers),
    concurrency: opts.concurrency ?? 4,
    defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...opts.defaultJobOptions },
    closeTimeoutMs: opts.closeTimeoutMs,
  })
  const { worker } = pair
  worker.on('failed', (job, err) => {
    if (!job) return
    const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError'
    log[final ? 'error' : 'warn'](
      { err, job: { id: job.id, kind: job.name, attemptsMade: job.attemptsMade } },
      final ? 'jobs: job failed for good' : 'jobs: job failed, will retry',
    )
  })
  worker.on('completed', (job) => log.info({ job: { id: job.id, kind: job.name } }, 'jobs: job done'))
  return { deadlines: pair.queue, worker, close: pair.close }
}
