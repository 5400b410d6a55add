// The queue/worker factory (src/queues/factory.ts) against a real Redis
// (redis://127.0.0.1:6379, or TONGBAN_REDIS_URL), with a TCP proxy the test can cut to take
// Redis away from one pair. Every subtest uses its own BullMQ prefix under one per-run base;
// all keys under the base are deleted at the end.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Redis } from 'ioredis'
import type { Job } from 'bullmq'
import { createQueuePair } from '../../src/queues/factory.js'
import { guardClosedConnectionErrors, type JobsLogger } from '../../src/queues/lifecycle.js'
import { createJobs } from '../../src/policy/deadline-queue.js'
import { createSyncJobs, TIERS_QUEUE, JOB_PUBLISH } from '../../src/tiers/sync-jobs.js'
import { CHECKPOINTS_QUEUE } from '../../src/tiers/checkpoint-push.js'
import { BATCHES_QUEUE, chunkJobId } from '../../src/bulk/queue.js'
import { DEADLINES_QUEUE } from '../../src/policy/deadlines.js'
import { MESSAGES_QUEUE } from '../../src/policy/application-messages/index.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const REDIS_URL = process.env.TONGBAN_REDIS_URL ?? 'redis://127.0.0.1:6379'
const BASE = `t_qf_${process.pid}_${randomBytes(4).toString('hex')}`
let seq = 0
const nextPrefix = () => `${BASE}_${++seq}`
const WAIT_MS = 15_000

const lines: { level: string; msg?: string }[] = []
const log: JobsLogger = {
  info: (_o, msg) => lines.push({ level: 'info', msg }),
  warn: (_o, msg) => lines.push({ level: 'warn', msg }),
  error: (_o, msg) => lines.push({ level: 'error', msg }),
}

const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
const opened: { close(): Promise<void> }[] = []
const track = <T extends { close(): Promise<void> }>(p: T): T => (opened.push(p), p)

t.teardown(async () => {
  await Promise.allSettled(opened.map((p) => p.close()))
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${BASE}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length) await redis.del(...keys)
  } while (cursor !== '0')
  redis.disconnect()
})

/** Poll `check` until it returns true (a wait, not an assertion); reject after timeoutMs. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Once Redis is back, BullMQ ends the connections a close() with Redis gone left: wait for that, or they would reconnect for ever. */
const gone = (prefix: string) => until(`the connections of ${prefix} are closed`, async () => !(await clientNames()).some((n) => n.startsWith(`${prefix}:`)), 30_000)

const clientNames = async () => (await redis.client('LIST') as string).split('\n').map((l) => /name=(\S*)/.exec(l)?.[1] ?? '')

/** A processor whose jobs wait until released; `started` lists the jobs that began. */
function gate() {
  const started: string[] = []
  let release!: () => void
  const released = new Promise<void>((r) => (release = r))
  const processor = async (job: Job<{ n: number }, string, string>) => {
    started.push(job.id!)
    await released
    return `done ${job.data.n}`
  }
  return { started, release, processor }
}

t.test('keys under <prefix>:<queue>, named connections, the worker runs the jobs', async (t) => {
  const prefix = nextPrefix()
  const g = gate()
  const pair = track(createQueuePair({ name: 'things', redis: REDIS_URL, prefix, clientName: 'things', label: 'things', log, processor: g.processor, defaultJobOptions: { attempts: 1 } }))
  await pair.add('thing', { n: 1 }, { jobId: 'thing-1' })
  t.equal(await redis.exists(`${prefix}:things:thing-1`), 1, 'the job hash under BullMQ prefix and queue name')
  await until('the worker has taken the job', () => g.started.includes('thing-1'))
  const names = await clientNames()
  t.ok(names.includes(`${prefix}:things-queue`), 'the queue connection is named')
  t.ok(names.includes(`${prefix}:things-worker`), 'the worker connection is named')
  g.release()
  await until('the job completed', async () => (await pair.queue.getJobState('thing-1')) === 'completed')
  t.equal((await pair.queue.getJob('thing-1'))?.returnvalue, 'done 1')

  // With Redis up, close() lets a running job finish.
  const g2 = gate()
  const p2 = track(createQueuePair({ name: 'things', redis: REDIS_URL, prefix: nextPrefix(), label: 'things', log, processor: g2.processor, defaultJobOptions: { attempts: 1 } }))
  await p2.add('thing', { n: 2 }, { jobId: 'thing-2' })
  await until('the second worker has taken its job', () => g2.started.includes('thing-2'))
  t.ok((await clientNames()).includes(`${p2.queue.opts.prefix}:queue`), 'without clientName: <prefix>:queue')
  const closed = p2.close()
  t.equal(p2.isClosing(), true, 'closing from the first close() on')
  t.equal(p2.close(), closed, 'close() is idempotent')
  g2.release()
  await closed
  t.equal(await redis.hget(`${p2.queue.opts.prefix}:things:thing-2`, 'returnvalue'), JSON.stringify('done 2'), 'the running job finished and was recorded')
})

t.test('no processor: this replica adds jobs and runs none', async (t) => {
  const prefix = nextPrefix()
  const pair = track(createQueuePair<{ n: number }, string, string>({ name: 'things', redis: REDIS_URL, prefix, label: 'things', log, processor: null, defaultJobOptions: {} }))
  t.equal(pair.worker, null)
  await pair.add('thing', { n: 1 }, { jobId: 'thing-1' })
  t.equal(await pair.queue.getJobState('thing-1'), 'waiting')
  await pair.close()
  t.notOk((await clientNames()).includes(`${prefix}:worker`), 'no worker connection')
})

t.test('a bad prefix is refused before touching Redis', async (t) => {
  for (const prefix of ['bad prefix', 'ends:', '']) {
    t.throws(() => createQueuePair({ name: 'things', redis: 'redis://127.0.0.1:1', prefix, label: 'things', log, processor: null, defaultJobOptions: {} }), /prefix/, JSON.stringify(prefix))
  }
})

t.test('Redis unreachable: add() rejects within its bound, close() returns', async (t) => {
  const pair = createQueuePair({ name: 'things', redis: 'redis://127.0.0.1:1', prefix: nextPrefix(), label: 'things', log, processor: gate().processor, defaultJobOptions: {}, addTimeoutMs: 300 })
  const t0 = Date.now()
  await t.rejects(pair.add('thing', { n: 1 }), /did not answer|ECONNREFUSED|Connection|retries/)
  t.ok(Date.now() - t0 < 2000, 'rejected fast')
  const t1 = Date.now()
  await pair.close()
  t.ok(Date.now() - t1 < 3000, 'close() did not wait for Redis')
})

t.test('Redis cut while a job runs: close() gives up within 2 s; BullMQ finishes closing once Redis is back', async (t) => {
  const target = new URL(REDIS_URL)
  const proxy = await startTcpProxy(Number(target.port || 6379), target.hostname)
  t.teardown(() => proxy.close())
  const g = gate()
  const prefix = nextPrefix()
  const pair = createQueuePair({ name: 'things', redis: `redis://127.0.0.1:${proxy.port}`, prefix, label: 'cut', log, processor: g.processor, defaultJobOptions: { attempts: 1 } })
  await pair.add('thing', { n: 1 }, { jobId: 'thing-1' })
  await until('the worker has taken the job', () => g.started.includes('thing-1'))
  await proxy.cut()
  // The clients have seen the cut: the pair judges Redis gone.
  await until('the connections noticed', () => lines.some((l) => l.msg === 'cut: Redis connection error'))
  const t0 = Date.now()
  await pair.close()
  t.ok(Date.now() - t0 < 2800, `close() returned in ${Date.now() - t0} ms, not closeTimeoutMs (10 s)`)
  g.release()
  await proxy.restore()
  await until('the worker finished closing', async () => {
    const w = pair.worker as unknown as { closing?: Promise<void>; closed?: boolean }
    return w.closing ? w.closing.then(() => true) : false
  }, 30_000)
  await gone(prefix)
  t.pass('the worker finished closing once Redis was back')
})

t.test('the deadline pair, too: with Redis cut, close() returns within 2 s by default', async (t) => {
  const target = new URL(REDIS_URL)
  const proxy = await startTcpProxy(Number(target.port || 6379), target.hostname)
  t.teardown(() => proxy.close())
  const noop = async () => {}
  const prefix = nextPrefix()
  const jobs = createJobs({ redis: `redis://127.0.0.1:${proxy.port}`, prefix, log, handlers: { onReminder: noop, onEscalation: noop, onGrantExpired: noop } })
  await jobs.deadlines.waitUntilReady()
  await jobs.worker.waitUntilReady()
  await until('the worker runs', () => jobs.worker.isRunning())
  await proxy.cut()
  const statuses = async () => [(await jobs.deadlines.client).status, (await jobs.worker.client).status]
  await until('the connections noticed', async () => (await statuses()).every((s) => s !== 'ready'))
  const t0 = Date.now()
  await jobs.close()
  t.ok(Date.now() - t0 < 2800, `close() returned in ${Date.now() - t0} ms`)
  await proxy.restore()
  await gone(prefix)
})

t.test('the catalogue sync pair: request() is bounded with Redis cut, close() too', async (t) => {
  const target = new URL(REDIS_URL)
  const proxy = await startTcpProxy(Number(target.port || 6379), target.hostname)
  t.teardown(() => proxy.close())
  const prefix = nextPrefix()
  const published: string[] = []
  const sync = createSyncJobs({ redis: `redis://127.0.0.1:${proxy.port}`, prefix, attempts: 1, backoffMs: 100, log, publish: async (reason) => void published.push(reason) })
  await sync.request('first')
  await until('published', () => published.includes('first'))
  t.ok(await redis.exists(`${prefix}:${TIERS_QUEUE}:meta`), 'under <prefix>:tiers')
  t.ok((await clientNames()).includes(`${prefix}:tiers-queue`), 'connection names kept')
  await proxy.cut()
  await until('the connections noticed', () => lines.some((l) => l.msg === 'tiers sync: Redis connection error'))
  const t0 = Date.now()
  await sync.request('during the cut')
  t.ok(Date.now() - t0 < 2500, 'request() gave up within its bound')
  t.ok(lines.some((l) => l.msg === 'tiers sync: could not queue a publication'), 'and said so')
  const t1 = Date.now()
  await sync.close()
  t.ok(Date.now() - t1 < 2800, `close() returned in ${Date.now() - t1} ms`)
  await proxy.restore()
  await gone(prefix)
})

t.test('a connection closed while connecting: its late error is dropped, not thrown', async (t) => {
  const conn = new EventEmitter()
  const owner = { connection: conn }
  t.throws(() => conn.emit('error', new Error('late')), /late/, 'an unguarded emitter throws')
  guardClosedConnectionErrors(owner)
  t.equal(conn.emit('error', new Error('late')), false, 'guarded: dropped')
  const seen: Error[] = []
  conn.on('error', (e) => seen.push(e))
  conn.emit('error', new Error('heard'))
  t.equal(seen.length, 1, 'with a listener it is delivered')
})

t.test('queue names and job ids stay as before (jobs in Redis outlive an upgrade)', async (t) => {
  t.same([DEADLINES_QUEUE, BATCHES_QUEUE, TIERS_QUEUE, CHECKPOINTS_QUEUE, MESSAGES_QUEUE], ['deadlines', 'batches', 'tiers', 'tiers-checkpoints', 'tiers-applications'])
  t.equal(JOB_PUBLISH, 'catalog.publish')
  t.equal(chunkJobId('B1', 3), 'b-B1-3')
})

