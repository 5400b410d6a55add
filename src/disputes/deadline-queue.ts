// The `dispute-deadlines` BullMQ queue (docs/disputes.md): a dispute's reminder before its
// deadline and its escalation at it, as for applications (src/policy/deadlines.ts). One
// delayed job each with a deterministic id (`dispute-reminder-<id>`), so filing twice or
// two replicas schedule nothing twice, and the jobs live in Redis: they survive a restart.
// The handlers are idempotent (conditional UPDATEs) and a job run before its time goes back
// to wait for it.
import { DelayedError, UnrecoverableError, type Processor } from 'bullmq'
import { createQueuePair, type JobsLogger, type QueuePair } from '../queues/factory.js'
import type { RedisSettings } from '../stores/redis.js'

export const DISPUTE_DEADLINES_QUEUE = 'dispute-deadlines'
export const JOB_DISPUTE_REMINDER = 'dispute.reminder'
export const JOB_DISPUTE_ESCALATION = 'dispute.escalation'
type Name = typeof JOB_DISPUTE_REMINDER | typeof JOB_DISPUTE_ESCALATION

export interface DisputeJobData {
  disputeId: string
  /** ISO time the job is due. */
  at: string
}

export interface DisputeDeadlineHandlers {
  onReminder(disputeId: string, now: Date): Promise<void>
  onEscalation(disputeId: string, now: Date): Promise<void>
}

const DAY_S = 86_400
export const reminderJobId = (id: string) => `dispute-reminder-${id}`
export const escalationJobId = (id: string) => `dispute-escalation-${id}`

export function disputeProcessor(h: DisputeDeadlineHandlers, now: () => number = Date.now): Processor<DisputeJobData, void, Name> {
  return async (job, token) => {
    const at = Date.parse(job.data?.at)
    if (Number.isFinite(at) && now() < at) {
      await job.moveToDelayed(at, token)
      throw new DelayedError()
    }
    switch (job.name) {
      case JOB_DISPUTE_REMINDER:
        return h.onReminder(job.data.disputeId, new Date(now()))
      case JOB_DISPUTE_ESCALATION:
        return h.onEscalation(job.data.disputeId, new Date(now()))
      default:
        throw new UnrecoverableError(`unknown dispute job ${JSON.stringify(job.name)}`)
    }
  }
}

export interface DisputeJobs {
  pair: QueuePair<DisputeJobData, void, Name>
  /** Reminder (if before the deadline) and escalation; times past fire at once. */
  schedule(disputeId: string, dueAt: Date, remindAt: Date | null): Promise<void>
  /** The dispute was resolved: its jobs go (a running one finds it resolved and does nothing). */
  cancel(disputeId: string): Promise<void>
  close(): Promise<void>
}

export function createDisputeJobs(o: { redis: RedisSettings; prefix: string; log: JobsLogger; handlers: DisputeDeadlineHandlers }): DisputeJobs {
  const pair = createQueuePair<DisputeJobData, void, Name>({
    name: DISPUTE_DEADLINES_QUEUE,
    redis: o.redis,
    prefix: o.prefix,
    clientName: 'disputes',
    label: 'dispute jobs',
    log: o.log,
    processor: disputeProcessor(o.handlers),
    concurrency: 2,
    defaultJobOptions: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 30 * DAY_S, count: 10_000 },
      removeOnFail: { age: 90 * DAY_S, count: 10_000 },
    },
  })
  pair.worker.on('failed', (job, err) => o.log.warn({ err, job: { id: job?.id, kind: job?.name } }, 'dispute jobs: job failed'))
  const add = (name: Name, jobId: string, disputeId: string, at: Date) =>
    pair.add(name, { disputeId, at: at.toISOString() }, { jobId, delay: Math.max(0, at.getTime() - Date.now()) })
  return {
    pair,
    async schedule(id, dueAt, remindAt) {
      if (remindAt && remindAt < dueAt) await add(JOB_DISPUTE_REMINDER, reminderJobId(id), id, remindAt)
      await add(JOB_DISPUTE_ESCALATION, escalationJobId(id), id, dueAt)
    },
    async cancel(id) {
      for (const jobId of [reminderJobId(id), escalationJobId(id)]) {
        if ((await pair.queue.getJobState(jobId)) === 'delayed') await pair.queue.remove(jobId).catch(() => 0)
      }
    },
    close: () => pair.close(),
  }
}
