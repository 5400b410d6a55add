// Deadline jobs against a real Redis (redis://127.0.0.1:6379, or TONGBAN_REDIS_URL). Every
// subtest uses its own BullMQ prefix under one per-run base, so workers never take each
// other's jobs and parallel runs never collide; all keys under the base are deleted at the end.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { createJobs } from '../../src/policy/deadline-queue.js'
import type { Jobs, JobsLogger } from '../../src/policy/deadline-queue.js'
import {
  JOB_ESCALATION,
  JOB_GRANT_EXPIRY,
  JOB_REMINDER,
  JobsUnavailableError,
  cancelApplicationDeadline,
  cancelGrantExpiry,
  escalationJobId,
  grantExpiryJobId,
  reminderJobId,
  scheduleApplicationDeadline,
  scheduleGrantExpiry,
} from '../../src/policy/deadlines.js'
import type { DeadlineHandlers } from '../../src/policy/deadlines.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const REDIS_URL = process.env.TONGBAN_REDIS_URL ?? 'redis://127.0.0.1:6379'
const BASE = `t_jobs_${process.pid}_${randomBytes(4).toString('hex')}`
const WAIT_MS = 15_000
let seq = 0
const nextPrefix = () => `${BASE}_${++seq}`

const logs: { level: string; msg?: string }[] = []
const log: JobsLogger = {
  info: (_o, msg) => logs.push({ level: 'info', msg }),
  warn: (_o, msg) => logs.push({ level: 'warn', msg }),
  error: (_o, msg) => logs.push({ level: 'error', msg }),
}

type Call = { kind: 'reminder' | 'escalation' | 'expired'; id: string; at: number }

/** Handlers that record their calls; `waitFor` resolves when a matching call has happened. */
function recorder(hook?: (c: Call) => void | Promise<void>) {
  const calls: Call[] = []
  const waiters: { match: (c: Call) => boolean; resolve: (c: Call) => void }[] = []
  const record = async (kind: Call['kind'], id: string) => {
    const c = { kind, id, at: Date.now() }
    await hook?.(c) // may throw: the job fails and is retried
    calls.push(c)
    for (const w of [...waiters]) if (w.match(c)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(c)
    }
  }
  const handlers: DeadlineHandlers = {
    onReminder: (id) => record('reminder', id),
    onEscalation: (id) => record('escalation', id),
    onGrantExpired: (id) => record('expired', id),
  }
  const waitFor = (kind: Call['kind'], id: string, timeoutMs = WAIT_MS) =>
    new Promise<Call>((resolve, reject) => {
      const match = (c: Call) => c.kind === kind && c.id === id
      const done = calls.find(match)
      if (done) return resolve(done)
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${kind} ${id}`)), timeoutMs)
      waiters.push({ match, resolve: (c) => (clearTimeout(timer), resolve(c)) })
    })
  return { calls, handlers, waitFor }
}

const opened: Jobs[] = []
function start(prefix: string, handlers: DeadlineHandlers, extra: Partial<Parameters<typeof createJobs>[0]> = {}): Jobs {
  const jobs = createJobs({ redis: REDIS_URL, prefix, handlers, log, ...extra })
  opened.push(jobs)
  return jobs
}

t.teardown(async () => {
  await Promise.allSettled(opened.map((j) => j.close()))
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${BASE}_*`, 'COUNT', 500)
      cursor = next
      if (keys.length) await redis.del(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
})

t.test('reminder then escalation fire on a shortened clock and get the application id', async (t) => {
  const rec = recorder()
  // One job at a time, so that even if both are due by the time the worker looks (a slow
  // machine), they run in due order.
  const jobs = start(nextPrefix(), rec.handlers, { concurrency: 1 })
  await until('the worker runs', async () => jobs.worker.isRunning())
  const now = Date.now()
  const remindAt = new Date(now + 300)
  const dueAt = new Date(now + 600)
  const r = await scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'APP-1', dueAt, remindAt })
  t.same(r, { reminder: 'added', escalation: 'added' })

  const esc = await rec.waitFor('escalation', 'APP-1')
  const rem = await rec.waitFor('reminder', 'APP-1')
  t.same(rec.calls.map((c) => `${c.kind}:${c.id}`), ['reminder:APP-1', 'escalation:APP-1'], 'in order, once each')
  t.ok(rem.at >= remindAt.getTime() - 20, 'the reminder did not fire early')
  t.ok(esc.at >= dueAt.getTime() - 20, 'the escalation did not fire early')
})

t.test('remindBefore (ms before dueAt) places the reminder', async (t) => {
  const rec = recorder()
  const jobs = start(nextPrefix(), rec.handlers)
  const dueAt = new Date(Date.now() + 3_600_000)
  await scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'APP-RB', dueAt, remindBefore: 2 * 86_400_000 })
  const job = await jobs.deadlines.getJob(reminderJobId('APP-RB'))
  t.equal(job?.name, JOB_REMINDER)
  t.equal(job?.data.at, new Date(dueAt.getTime() - 2 * 86_400_000).toISOString())
  t.equal(job?.opts.delay, 0, 'a reminder time already past fires at once')
  await cancelApplicationDeadline(jobs.deadlines, 'APP-RB')
  const only = await scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'APP-NR', dueAt })
  t.equal(only.reminder, 'skipped', 'no reminder asked for')
  t.equal(await jobs.deadlines.getDelayedCount(), 1)
})

t.test('scheduling twice is idempotent; a changed due time replaces; cancel removes both', async (t) => {
  const rec = recorder()
  const jobs = start(nextPrefix(), rec.handlers)
  const q = jobs.deadlines
  const dueAt = new Date(Date.now() + 3_600_000)
  const remindAt = new Date(dueAt.getTime() - 600_000)
  t.same(await scheduleApplicationDeadline(q, { applicationId: 'APP-2', dueAt, remindAt }), { reminder: 'added', escalation: 'added' })
  t.same(await scheduleApplicationDeadline(q, { applicationId: 'APP-2', dueAt, remindAt }), { reminder: 'unchanged', escalation: 'unchanged' })
  t.equal(await q.getDelayedCount(), 2, 'one reminder and one escalation')
  const esc = await q.getJob(escalationJobId('APP-2'))
  t.equal(esc?.id, 'escalation-APP-2')
  t.equal(esc?.name, JOB_ESCALATION)
  t.same(esc?.data, { applicationId: 'APP-2', at: dueAt.toISOString() })
  t.equal((await q.getJob(reminderJobId('APP-2')))?.id, 'reminder-APP-2')

  const later = new Date(dueAt.getTime() + 86_400_000)
  t.same(await scheduleApplicationDeadline(q, { applicationId: 'APP-2', dueAt: later, remindAt }), { reminder: 'unchanged', escalation: 'replaced' })
  t.equal(await q.getDelayedCount(), 2)
  t.equal((await q.getJob(escalationJobId('APP-2')))?.data.at, later.toISOString())

  t.equal(await cancelApplicationDeadline(q, 'APP-2'), 2, 'both removed')
  t.equal(await q.getJob(escalationJobId('APP-2')), undefined)
  t.equal(await q.getJob(reminderJobId('APP-2')), undefined)
  t.equal(await q.getDelayedCount(), 0)
  t.equal(await cancelApplicationDeadline(q, 'APP-2'), 0, 'cancelling again is harmless')
  t.same(rec.calls, [], 'nothing fired')
})

t.test('cancelled jobs do not fire', async (t) => {
  const rec = recorder()
  const jobs = start(nextPrefix(), rec.handlers)
  const now = Date.now()
  await scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'APP-C', dueAt: new Date(now + 800), remindAt: new Date(now + 400) })
  t.equal(await cancelApplicationDeadline(jobs.deadlines, 'APP-C'), 2)
  // A control job scheduled after the cancelled ones' due times: once it fired, they would have.
  await scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'APP-CTRL', dueAt: new Date(now + 1000) })
  await rec.waitFor('escalation', 'APP-CTRL')
  t.same(rec.calls.map((c) => c.id), ['APP-CTRL'])
})

t.test('ids with characters BullMQ refuses (":") are encoded', async (t) => {
  const rec = recorder()
  const jobs = start(nextPrefix(), rec.handlers)
  const id = 'app:320000:42'
  t.equal(escalationJobId(id), 'escalation-app%3A320000%3A42')
  t.equal(reminderJobId('01J9ZK7Q'), 'reminder-01J9ZK7Q', 'ULIDs are kept as they are')
  t.equal(grantExpiryJobId('12345'), 'grant-expiry-12345', 'never an integer id')
  await scheduleApplicationDeadline(jobs.deadlines, { applicationId: id, dueAt: new Date(Date.now() + 200) })
  const c = await rec.waitFor('escalation', id)
  t.equal(c.id, id, 'the handler gets the original id')
})

t.test('a handler that throws is retried with backoff and then succeeds', async (t) => {
  let failures = 0
  const rec = recorder((c) => {
    if (c.kind === 'escalation' && failures === 0) {
      failures++
      throw new Error('database briefly unavailable')
    }
  })
  const jobs = start(nextPrefix(), rec.handlers)
  const completed = new Promise<number>((resolve) =>
    jobs.worker.on('completed', (job) => {
      if (job.id === escalationJobId('APP-3')) resolve(job.attemptsMade)
    }),
  )
  const failed = new Promise<string>((resolve) => jobs.worker.once('failed', (_job, err) => resolve(err.message)))
  const dueAt = new Date(Date.now() + 100)
  await scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'APP-3', dueAt })
  t.equal(await failed, 'database briefly unavailable', 'the first attempt failed')
  const c = await rec.waitFor('escalation', 'APP-3')
  t.equal(failures, 1)
  t.ok(c.at - dueAt.getTime() >= 900, 'the retry waited for the backoff (1 s)')
  t.equal(await completed, 2, 'completed on the second attempt')
  t.equal(rec.calls.length, 1, 'the successful attempt ran once')
  t.ok(logs.some((l) => l.level === 'warn' && l.msg === 'jobs: job failed, will retry'))
})

t.test('jobs survive a restart: a new worker on the same prefix runs them', async (t) => {
  const prefix = nextPrefix()
  const first = recorder()
  const a = start(prefix, first.handlers)
  const dueAt = new Date(Date.now() + 1500)
  await scheduleApplicationDeadline(a.deadlines, { applicationId: 'APP-4', dueAt })
  await scheduleGrantExpiry(a.deadlines, { grantId: 'G-4', expiresAt: dueAt })
  await a.close()
  t.ok(Date.now() < dueAt.getTime(), 'the first instance closed before the due time')

  const second = recorder()
  const b = start(prefix, second.handlers)
  const c = await second.waitFor('escalation', 'APP-4')
  await second.waitFor('expired', 'G-4')
  t.ok(c.at >= dueAt.getTime() - 20)
  t.same(first.calls, [], 'the closed instance ran nothing')
  await until('the job is recorded as completed', async () => (await b.deadlines.getJobState(escalationJobId('APP-4'))) === 'completed')
  t.pass('completed on the new instance')
})

t.test('grant expiry fires; a changed expiry replaces the job; cancel removes it', async (t) => {
  const rec = recorder()
  const jobs = start(nextPrefix(), rec.handlers)
  const q = jobs.deadlines
  t.equal(await scheduleGrantExpiry(q, { grantId: 'G-1', expiresAt: new Date(Date.now() + 3_600_000) }), 'added')
  t.equal((await q.getJob(grantExpiryJobId('G-1')))?.name, JOB_GRANT_EXPIRY)
  const soon = new Date(Date.now() + 300)
  t.equal(await scheduleGrantExpiry(q, { grantId: 'G-1', expiresAt: soon }), 'replaced', 'expiry moved earlier')
  const c = await rec.waitFor('expired', 'G-1')
  t.ok(c.at >= soon.getTime() - 20)
  t.equal(rec.calls.filter((x) => x.id === 'G-1').length, 1, 'fired once')

  // Rescheduling the same expiry after it fired does not fire it again...
  t.equal(await scheduleGrantExpiry(q, { grantId: 'G-1', expiresAt: soon }), 'unchanged')
  // ...a renewed (later) expiry does schedule it again.
  t.equal(await scheduleGrantExpiry(q, { grantId: 'G-1', expiresAt: new Date(Date.now() + 3_600_000) }), 'replaced')
  t.equal(await q.getJob(grantExpiryJobId('G-1')).then((j) => j?.getState()), 'delayed')

  t.equal(await cancelGrantExpiry(q, 'G-1'), 1, 'revoked: removed')
  t.equal(await cancelGrantExpiry(q, 'G-1'), 0)
  t.equal(await q.getJob(grantExpiryJobId('G-1')), undefined)
})

t.test('scheduling fails fast when Redis is unreachable', async (t) => {
  const rec = recorder()
  const jobs = start(nextPrefix(), rec.handlers, { redis: 'redis://127.0.0.1:1', closeTimeoutMs: 1000 })
  const t0 = Date.now()
  await t.rejects(
    scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'APP-X', dueAt: new Date(Date.now() + 60_000) }, { timeoutMs: 500 }),
    JobsUnavailableError,
  )
  t.ok(Date.now() - t0 < 3000, 'within the bound')
  await t.rejects(cancelGrantExpiry(jobs.deadlines, 'G-X', { timeoutMs: 300 }), { code: 'JOBS_UNAVAILABLE' })
  await jobs.close()
  t.ok(Date.now() - t0 < 6000, 'close() returns too')
})

function within(p: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]).finally(() =>
    clearTimeout(timer),
  )
}

/** Poll `check` until it returns true (a wait, not an assertion); reject after timeoutMs. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('Redis down at start, cut while running: calls fail fast, then everything recovers', async (t) => {
  const target = new URL(REDIS_URL)
  const proxy = await startTcpProxy(Number(target.port || 6379), target.hostname)
  t.teardown(() => proxy.close())
  await proxy.cut()
  const rec = recorder()
  const jobs = start(nextPrefix(), rec.handlers, { redis: `redis://127.0.0.1:${proxy.port}`, closeTimeoutMs: 2000 })
  const q = jobs.deadlines
  await t.rejects(scheduleApplicationDeadline(q, { applicationId: 'APP-D', dueAt: new Date(Date.now() + 100) }, { timeoutMs: 300 }), JobsUnavailableError, 'down at start: rejected within the bound')

  await proxy.restore()
  await until('scheduling works again', () =>
    scheduleApplicationDeadline(q, { applicationId: 'APP-D', dueAt: new Date(Date.now() + 100) }, { timeoutMs: 300 }).then(() => true, () => false),
  )
  await rec.waitFor('escalation', 'APP-D')
  t.pass('the worker started once Redis was reachable')

  // Cut while running: a job due during the outage fires after Redis is back.
  const dueAt = new Date(Date.now() + 400)
  await scheduleApplicationDeadline(q, { applicationId: 'APP-O', dueAt })
  await proxy.cut()
  const t0 = Date.now()
  await t.rejects(scheduleGrantExpiry(q, { grantId: 'G-O', expiresAt: new Date(Date.now() + 60_000) }), JobsUnavailableError)
  t.ok(Date.now() - t0 < 2500, 'failed fast while Redis was cut')
  await until('the due time has passed', async () => Date.now() > dueAt.getTime() + 300)
  await proxy.restore()
  const c = await rec.waitFor('escalation', 'APP-O', 30_000)
  t.ok(c.at > dueAt.getTime(), 'fired after the outage')

  // Shutting down while Redis is gone does not hang (nor keep the process alive).
  await proxy.cut()
  const t1 = Date.now()
  await jobs.close()
  t.ok(Date.now() - t1 < 3000, 'close() with Redis gone returns within closeTimeoutMs')
  // BullMQ still holds the last job's result; once Redis is back it records it and finishes closing.
  await proxy.restore()
  await within(jobs.worker.closing ?? Promise.resolve(), 30_000, 'the worker to finish closing')
  t.pass('the worker finished closing once Redis was back')
})

t.test('bad input is refused before touching Redis', async (t) => {
  const jobs = start(nextPrefix(), recorder().handlers)
  await t.rejects(scheduleApplicationDeadline(jobs.deadlines, { applicationId: 'A', dueAt: new Date(NaN) }), TypeError)
  await t.rejects(scheduleGrantExpiry(jobs.deadlines, { grantId: '', expiresAt: new Date() }), TypeError)
  t.throws(() => createJobs({ redis: REDIS_URL, prefix: 'bad prefix', handlers: recorder().handlers, log }), /prefix/)
})
