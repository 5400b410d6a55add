// Deadline jobs (README.md, docs/architecture.md): a provider must decide an application by its deadline
// (reminder before it, escalation at it), and a grant stops working when it expires. Each
// is one delayed BullMQ job with a deterministic id, so scheduling is idempotent across
// replicas and retries, and the jobs live in Redis: they survive a gateway restart.
//
// The handlers do the state changes; they are idempotent (conditional UPDATEs), because a
// job can run more than once (a retry after a throw, a stalled job taken over by another
// replica), and they check the time as well as the state, because a job can run at the wrong
// moment (promoted by hand, a stale schedule, a worker whose clock differs from the
// scheduler's). A job that finds itself before its due time goes back to wait for it. The job is only the alarm clock: authorization still checks a grant's validity
// period on every query, so an expired grant is refused even before its job has run.
import type { Job, JobsOptions, Processor, Queue } from 'bullmq'
import { DelayedError, UnrecoverableError } from 'bullmq'

export const DEADLINES_QUEUE = 'deadlines'

export const JOB_REMINDER = 'application.reminder'
export const JOB_ESCALATION = 'application.escalation'
export const JOB_GRANT_EXPIRY = 'grant.expiry'
export type DeadlineJobName = typeof JOB_REMINDER | typeof JOB_ESCALATION | typeof JOB_GRANT_EXPIRY

export interface ApplicationJobData {
  applicationId: string
  /** ISO time the job is due (for logs and to detect a changed schedule). */
  at: string
}
export interface GrantJobData {
  grantId: string
  at: string
}
export type DeadlineJobData = ApplicationJobData | GrantJobData

export interface DeadlineHandlers {
  /** The deadline is near: remind the provider. */
  onReminder(applicationId: string): Promise<void>
  /** The deadline has passed without a decision: escalate. */
  onEscalation(applicationId: string): Promise<void>
  /** The grant's validity period has ended. */
  onGrantExpired(grantId: string): Promise<void>
}

/** Time source for computing delays; tests may pass their own. */
export interface Clock {
  now(): number
}
export const systemClock: Clock = { now: () => Date.now() }

export interface ScheduleOptions {
  clock?: Clock
  /**
   * Upper bound (ms) on how long a call may wait for Redis, so a request handler never hangs
   * on BullMQ (default 2000). On timeout the call rejects with JobsUnavailableError; the
   * Redis command may still complete later, which is harmless because job ids are deterministic.
   */
  timeoutMs?: number
}

export class JobsUnavailableError extends Error {
  readonly code = 'JOBS_UNAVAILABLE'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'JobsUnavailableError'
  }
}

// BullMQ 5 refuses custom job ids that contain ':' (unless they have exactly three
// ':'-separated parts, its own repeat-job format) and ids that are integers. Ids here are
// `<kind>-<entity id>`, where the entity id is percent-encoded if it holds anything outside
// a safe set, so the id never contains ':' and never parses as an integer.
const SAFE_ID = /^[A-Za-z0-9._~-]{1,200}$/
const encodeId = (id: string): string => {
  if (typeof id !== 'string' || id.length === 0) throw new TypeError('jobs: an entity id must be a non-empty string')
  return SAFE_ID.test(id) ? id : encodeURIComponent(id).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}
export const reminderJobId = (applicationId: string): string => `reminder-${encodeId(applicationId)}`
export const escalationJobId = (applicationId: string): string => `escalation-${encodeId(applicationId)}`
export const grantExpiryJobId = (grantId: string): string => `grant-expiry-${encodeId(grantId)}`

function validDate(d: unknown, what: string): Date {
  if (!(d instanceof Date) || !Number.isFinite(d.getTime())) throw new TypeError(`jobs: ${what} must be a valid Date`)
  return d
}

/** The job to replace is being processed right now; try again shortly. */
export class JobBusyError extends Error {
  readonly code = 'JOB_BUSY'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'JobBusyError'
  }
}

async function bounded<T>(what: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new JobsUnavailableError(`jobs: ${what} did not complete within ${timeoutMs} ms (Redis unavailable?)`)), timeoutMs)
  })
  try {
    return await Promise.race([work(), timeout])
  } catch (e) {
    if (e instanceof JobsUnavailableError || e instanceof JobBusyError || e instanceof TypeError) throw e
    throw new JobsUnavailableError(`jobs: ${what} failed: ${(e as Error).message}`, { cause: e })
  } finally {
    clearTimeout(timer)
  }
}

/** Remove a job if it exists and is not running; true if it was removed. */
async function removeIfPresent(queue: Queue, jobId: string): Promise<boolean> {
  // BullMQ's remove reports success for an absent id too, so look first.
  if ((await queue.getJobState(jobId)) === 'unknown') return false
  return (await queue.remove(jobId)) === 1
}

export type ScheduleOutcome = 'added' | 'unchanged' | 'replaced' | 'skipped'

/**
 * Put one delayed job in place: add it if absent; leave it if present with the same due
 * time (idempotent, also after it has run while BullMQ still retains it); otherwise replace
 * it. A job that is running right now cannot be replaced: that rejects with JobBusyError.
 */
async function upsertDelayed(
  queue: Queue,
  name: DeadlineJobName,
  jobId: string,
  data: DeadlineJobData,
  at: Date,
  clock: Clock,
): Promise<ScheduleOutcome> {
  const delay = Math.max(0, at.getTime() - clock.now())
  const opts: JobsOptions = { jobId, delay }
  const existing = (await queue.getJob(jobId)) as Job<DeadlineJobData> | undefined
  if (existing) {
    // Same schedule: nothing to do, unless it ran and failed for good (then run it again).
    if (existing.name === name && existing.data?.at === data.at && (await existing.getState()) !== 'failed') return 'unchanged'
    try {
      await existing.remove()
    } catch (e) {
      throw new JobBusyError(`jobs: ${jobId} is being processed and cannot be rescheduled now`, { cause: e })
    }
    await queue.add(name, data, opts)
    return 'replaced'
  }
  // Two replicas racing on the same id: BullMQ keeps the first one added.
  await queue.add(name, data, opts)
  return 'added'
}

export interface ApplicationDeadline {
  applicationId: string
  /** When the escalation fires: the end of the last working day (see policy/calendar.ts). */
  dueAt: Date
  /** When the reminder fires. Wins over remindBefore. */
  remindAt?: Date
  /** Alternatively, the reminder fires this many ms before dueAt. Neither given: no reminder. */
  remindBefore?: number
}

/**
 * Schedule `application.reminder` (at remindAt, or dueAt - remindBefore) and
 * `application.escalation` (at dueAt) for an application. Times already past fire at once.
 * A reminder at or after dueAt is skipped (the escalation covers it). Calling it again with
 * the same times changes nothing; with other times it replaces the jobs.
 */
export async function scheduleApplicationDeadline(
  queue: Queue,
  d: ApplicationDeadline,
  opts: ScheduleOptions = {},
): Promise<{ reminder: ScheduleOutcome; escalation: ScheduleOutcome }> {
  const clock = opts.clock ?? systemClock
  const dueAt = validDate(d.dueAt, 'dueAt')
  let remindAt: Date | undefined
  if (d.remindAt !== undefined) remindAt = validDate(d.remindAt, 'remindAt')
  else if (d.remindBefore !== undefined) {
    if (!Number.isFinite(d.remindBefore) || d.remindBefore < 0) throw new TypeError('jobs: remindBefore must be a non-negative number of ms')
    remindAt = new Date(dueAt.getTime() - d.remindBefore)
  }
  const { applicationId } = d
  const rid = reminderJobId(applicationId)
  const eid = escalationJobId(applicationId)
  return bounded(`scheduling the deadline of application ${applicationId}`, opts.timeoutMs ?? 2000, async () => {
    let reminder: ScheduleOutcome = 'skipped'
    if (remindAt && remindAt.getTime() < dueAt.getTime()) {
      reminder = await upsertDelayed(queue, JOB_REMINDER, rid, { applicationId, at: remindAt.toISOString() }, remindAt, clock)
    } else {
      await queue.remove(rid) // a reminder from an earlier schedule no longer applies
    }
    const escalation = await upsertDelayed(queue, JOB_ESCALATION, eid, { applicationId, at: dueAt.toISOString() }, dueAt, clock)
    return { reminder, escalation }
  })
}

/**
 * Remove an application's reminder and escalation (the provider has decided). Returns how
 * many jobs were removed. A job that is running at that moment cannot be removed and is
 * left to finish: its handler sees the decided application and does nothing.
 */
export async function cancelApplicationDeadline(queue: Queue, applicationId: string, opts: ScheduleOptions = {}): Promise<number> {
  const ids = [reminderJobId(applicationId), escalationJobId(applicationId)]
  return bounded(`cancelling the deadline of application ${applicationId}`, opts.timeoutMs ?? 2000, async () => {
    let removed = 0
    for (const id of ids) if (await removeIfPresent(queue, id)) removed++
    return removed
  })
}

/** Schedule (or move, when the expiry changed) the `grant.expiry` job of a grant. */
export async function scheduleGrantExpiry(
  queue: Queue,
  g: { grantId: string; expiresAt: Date },
  opts: ScheduleOptions = {},
): Promise<ScheduleOutcome> {
  const expiresAt = validDate(g.expiresAt, 'expiresAt')
  const id = grantExpiryJobId(g.grantId)
  return bounded(`scheduling the expiry of grant ${g.grantId}`, opts.timeoutMs ?? 2000, () =>
    upsertDelayed(queue, JOB_GRANT_EXPIRY, id, { grantId: g.grantId, at: expiresAt.toISOString() }, expiresAt, opts.clock ?? systemClock),
  )
}

/** Remove a grant's expiry job (the grant was revoked). Returns 1 if removed, 0 otherwise. */
export async function cancelGrantExpiry(queue: Queue, grantId: string, opts: ScheduleOptions = {}): Promise<number> {
  const id = grantExpiryJobId(grantId)
  return bounded(`cancelling the expiry of grant ${grantId}`, opts.timeoutMs ?? 2000, async () => ((await removeIfPresent(queue, id)) ? 1 : 0))
}

/** The worker's processor: dispatch by job name to the handlers. A throw makes BullMQ retry. */
export function deadlineProcessor(handlers: DeadlineHandlers, clock: Clock = systemClock): Processor<DeadlineJobData, void, string> {
  return async (job, token) => {
    const at = Date.parse(job.data?.at)
    if (Number.isFinite(at) && clock.now() < at) {
      // Too early: nothing is due yet. Back to the delayed set until it is.
      await job.moveToDelayed(at, token)
      throw new DelayedError()
    }
    switch (job.name) {
      case JOB_REMINDER:
        return handlers.onReminder((job.data as ApplicationJobData).applicationId)
      case JOB_ESCALATION:
        return handlers.onEscalation((job.data as ApplicationJobData).applicationId)
      case JOB_GRANT_EXPIRY:
        return handlers.onGrantExpired((job.data as GrantJobData).grantId)
      default:
        // Retrying cannot help a job nobody knows how to run.
        throw new UnrecoverableError(`unknown deadline job ${JSON.stringify(job.name)}`)
    }
  }
}
