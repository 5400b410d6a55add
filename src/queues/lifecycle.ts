// What every BullMQ queue + worker pair of a node does alike (deadlines, catalogue sync,
// checkpoint push, application messages): start the worker once connected, bound the wait
// of a request handler adding a job, and close without hanging when Redis is gone.
import type { Queue, Worker } from 'bullmq'
import type { JobsLogger } from './deadline-queue.js'

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
 * Closes a worker and its queue, waiting for running jobs at most `ms`; then drops what is
 * still connecting or reconnecting, so that it cannot hold the process open.
 */
export async function closeBoth(worker: Worker, queue: Queue, ms = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise((resolve) => {
    timer = setTimeout(resolve, ms)
  })
  await Promise.race([Promise.allSettled([worker.close(), queue.close()]), gaveUp])
  clearTimeout(timer)
  await Promise.allSettled([worker.disconnect(), queue.disconnect()])
}
