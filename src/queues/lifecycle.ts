// The building blocks every BullMQ queue + worker pair of a node shares (composed by
// factory.ts): start the worker once connected, one warning per Redis outage, bounded waits
// for a request handler adding a job, and a close that does not hang when Redis is gone.
import type { EventEmitter } from 'node:events'
import type { Queue, Worker } from 'bullmq'

/** The subset of a pino / Fastify logger used here. */
export interface JobsLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/**
 * Runs a worker made with `autorun: false` once its connection is up: with autorun, a close()
 * during the first connection attempt can leave BullMQ's stalled-job timer (30 s) holding
 * the process open. Failures are logged as `<label>: …`, never thrown.
 */
export function runWhenReady(worker: Worker, log: JobsLogger, label: string, closing: () => boolean): void {
  worker.waitUntilReady().then(
    () => {
      if (!closing()) worker.run().catch((err) => log.error({ err }, `${label}: worker stopped`))
    },
    (err) => {
      if (!closing()) log.error({ err }, `${label}: worker could not connect`)
    },
  )
}

/**
 * The `error` listener for a queue's or worker's connection: one warning per role every ten
 * seconds, `<label>: Redis connection error`, so that a Redis outage does not flood the log.
 */
export function connectionErrorLog(log: JobsLogger, label: string): (role: string) => (err: Error) => void {
  const last = new Map<string, number>()
  return (role) => (err) => {
    const now = Date.now()
    if (now - (last.get(role) ?? 0) < 10_000) return
    last.set(role, now)
    log.warn({ err, role }, `${label}: Redis connection error`)
  }
}

/** `p`, or a rejection after `ms`: adding a job must not hold a request or a shutdown. */
export function withinMs<T>(p: Promise<T>, ms: number, what = 'queue'): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms)
    timer.unref()
  })
  return Promise.race([p, gaveUp]).finally(() => clearTimeout(timer))
}

/**
 * BullMQ 5 emits an 'error' on its RedisConnection when the connection's initialisation
 * fails after close() has already removed every listener (a Queue or Worker closed while
 * still connecting: a short-lived app, a slow machine) — an unhandled 'error' event that
 * kills the process. Such an error has nobody left to tell; drop it instead of crashing.
 */
export function guardClosedConnectionErrors(owner: unknown): void {
  const o = owner as { connection?: unknown; blockingConnection?: unknown }
  for (const conn of [o.connection, o.blockingConnection]) {
    const c = conn as (EventEmitter & { emit?: EventEmitter['emit'] }) | undefined
    if (typeof c?.emit !== 'function' || typeof c.listenerCount !== 'function') continue
    const emit = c.emit.bind(c)
    c.emit = (event: string | symbol, ...args: unknown[]) => (event === 'error' && c.listenerCount('error') === 0 ? false : emit(event, ...args))
  }
}

type Role = 'queue' | 'worker' | 'blocking'
/** What close() needs of an ioredis client (through BullMQ's wrapper, which forwards to it). */
type RedisLike = { status: string; disconnect(): void }

/**
 * The connections of a pair that have come up, to judge at close() whether Redis is
 * reachable, and to end them once closed (or those that may be ended when close() gives up).
 */
export function trackClients(queue: Queue, worker: Worker | null) {
  const clients = new Map<Role, RedisLike>()
  let expected = 0
  const track = (role: Role, p: Promise<unknown>) => {
    expected++
    p.then((c) => void clients.set(role, c as RedisLike), () => {})
  }
  track('queue', queue.client)
  if (worker) {
    track('worker', worker.client)
    // BullMQ keeps the worker's blocking connection protected; it is reached only to close it.
    const blocking = (worker as unknown as { blockingConnection?: { client: Promise<unknown> } }).blockingConnection
    if (blocking) track('blocking', blocking.client)
  }
  const drop = (roles: Role[]) => {
    for (const role of roles) {
      const c = clients.get(role)
      if (c && c.status !== 'end') c.disconnect()
    }
  }
  return {
    healthy: () => clients.size === expected && [...clients.values()].every((c) => c.status === 'ready'),
    /** The queue's and the blocking connections; never the worker's main one (see closePair). */
    dropIdle: () => drop(['queue', 'blocking']),
    dropAll: () => drop(['queue', 'worker', 'blocking']),
  }
}

/**
 * Closes a worker and its queue. With Redis reachable, running jobs may finish, up to
 * `ms`. With Redis known to be gone it does not wait for them (nothing could be recorded)
 * and gives up after at most 2 s. A job that has not finished is not lost: its lock expires
 * and another replica (or this one after a restart) runs it again as a stalled job.
 *
 * When it gives up it drops the queue's and the blocking connections but leaves the
 * worker's main connection alone: BullMQ is still trying to record the last jobs' results on
 * it and retries them without pause while closing, so ending that connection would spin the
 * CPU. BullMQ finishes closing by itself if Redis comes back; a process that is shutting
 * down should simply exit after this returns.
 */
export async function closePair(
  p: { queue: Queue; worker: Worker | null; clients: ReturnType<typeof trackClients>; log: JobsLogger; label: string },
  ms: number,
): Promise<void> {
  const healthy = p.clients.healthy()
  const limit = healthy ? ms : Math.min(2000, ms)
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), limit)
  })
  const done = Promise.allSettled([p.worker?.close(!healthy), p.queue.close()])
  const outcome = await Promise.race([done, gaveUp])
  clearTimeout(timer)
  if (outcome === 'timeout') {
    p.log.warn({}, `${p.label}: close timed out (Redis unreachable?); running jobs will be taken over as stalled jobs, the process should exit`)
    p.clients.dropIdle()
    return
  }
  for (const r of outcome) if (r.status === 'rejected') p.log.warn({ err: r.reason }, `${p.label}: error while closing`)
  // Closed: a connection BullMQ closed while it was reconnecting would otherwise go on reconnecting.
  p.clients.dropAll()
}
