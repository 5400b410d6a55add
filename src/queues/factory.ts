// One BullMQ queue and (optionally) this replica's worker for it, set up as every pair of a
// node is (docs/architecture.md): deadlines, batches, catalogue sync, checkpoint push, application
// messages. What a pair does for itself (job names and ids, processor, sweepers,
// coalescing, its 'failed' log lines) stays with the pair.
//
// Connections: BullMQ gets its own ioredis connections, never the app's client (that one has
// a keyPrefix, which BullMQ refuses, and fails fast for the request path), of the node's
// topology (src/stores/redis.ts: standalone, Sentinel, Cluster). Keys are namespaced with
// BullMQ's own `prefix` option (`<prefix>:<queue>:…`), so nodes and test runs sharing one
// Redis never collide; on a Cluster the prefix is a hash tag (`{…}`, bullPrefix) so that
// each queue's keys, which BullMQ's scripts use together, are in one slot.
// - The queue's connection (request handlers add and remove jobs on it) retries a command
//   once, and add() bounds its wait, so a request never hangs on BullMQ. Offline queueing
//   stays on: with it off BullMQ's own connection emits an unhandled error on close.
// - The worker's connection has `maxRetriesPerRequest: null`, as BullMQ requires for
//   blocking commands; it reconnects for ever in the background.
import { Queue, Worker } from 'bullmq'
import type { DefaultJobOptions, JobsOptions, Processor, WorkerOptions } from 'bullmq'
import type { RedisOptions } from 'ioredis'
import { bullConnection, type RedisSettings } from '../stores/redis.js'
import { closePair, connectionErrorLog, guardClosedConnectionErrors, runWhenReady, trackClients, withinMs, type JobsLogger } from './lifecycle.js'

export type { JobsLogger } from './lifecycle.js'

export interface QueuePairOptions<D, R, N extends string> {
  /** The queue's name: part of every key, never to change (jobs in Redis outlive releases). */
  name: string
  redis: RedisTarget
  /** BullMQ key prefix, e.g. `tongban:bull` (`{tongban:bull}` on a Cluster: bullPrefix); no trailing ':'. */
  prefix: string
  /** Connection names are `<prefix>:<clientName>-queue` / `-worker` (`<prefix>:queue` / `:worker` without). */
  clientName?: string
  /** Starts this pair's log lines (`<label>: …`). */
  label: string
  log: JobsLogger
  /** null: this replica adds jobs but runs none. */
  processor: Processor<D, R, N> | null
  /** Jobs run at once by this replica's worker (default 1). */
  concurrency?: number
  /** Lock and stall settings of the worker, where a pair needs other than BullMQ's. */
  worker?: Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'>
  defaultJobOptions: DefaultJobOptions
  /** close() waits this long (ms) for running jobs (default 10000; at most 2000 with Redis gone). */
  closeTimeoutMs?: number
  /** add() rejects after this long (ms, default 2000). */
  addTimeoutMs?: number
}

export interface QueuePair<D, R, N extends string, W extends Worker<D, R, N> | null = Worker<D, R, N>> {
  queue: Queue<D, R, N>
  worker: W
  /** queue.add, rejecting after addTimeoutMs (the job may still be added later). */
  add(name: N, data: D, opts?: JobsOptions): Promise<unknown>
  /** True from the first close() on. */
  isClosing(): boolean
  /** Stop taking jobs, wait (bounded) for running ones, close the connections. Idempotent. */
  close(): Promise<void>
}

/** A Redis URL (standalone), or the node's Redis settings (any topology). */
export type RedisTarget = string | RedisSettings

const PREFIX = /^(?:[A-Za-z0-9._:-]{1,100}|\{[A-Za-z0-9._:-]{1,100}\})$/

function connectionOf(target: RedisTarget, opts: RedisOptions) {
  return typeof target === 'string' ? { ...opts, url: target } : bullConnection(target, opts)
}

export function createQueuePair<D, R, N extends string>(o: QueuePairOptions<D, R, N> & { processor: Processor<D, R, N> }): QueuePair<D, R, N>
export function createQueuePair<D, R, N extends string>(o: QueuePairOptions<D, R, N>): QueuePair<D, R, N, Worker<D, R, N> | null>
export function createQueuePair<D, R, N extends string>(o: QueuePairOptions<D, R, N>): QueuePair<D, R, N, Worker<D, R, N> | null> {
  const { prefix, log, label } = o
  if (!PREFIX.test(prefix) || prefix.endsWith(':')) {
    throw new Error(`${label}: prefix ${JSON.stringify(prefix)} must be 1-100 of A-Z a-z 0-9 . _ : - (optionally in one pair of braces) and not end with ':'`)
  }
  const base: RedisOptions = { connectTimeout: 2000 }
  const connectionName = (role: 'queue' | 'worker') => `${prefix}:${o.clientName ? `${o.clientName}-` : ''}${role}`
  const onRedisError = connectionErrorLog(log, label)

  // Connection options, not clients: each Queue and Worker then owns dedicated ioredis
  // connections (the worker a second one for its blocking commands) and BullMQ closes them
  // itself, also when close() comes while they are still connecting. On a Cluster BullMQ
  // needs client instances (still one per Queue and Worker); it does not close those, the
  // pair does (closePair: dropAll).
  const queue = new Queue<D, R, N>(o.name, {
    connection: connectionOf(o.redis, { ...base, maxRetriesPerRequest: 1, connectionName: connectionName('queue') }),
    prefix,
    defaultJobOptions: o.defaultJobOptions,
  })
  queue.on('error', onRedisError('queue'))
  guardClosedConnectionErrors(queue)

  let closing: Promise<void> | undefined
  let worker: Worker<D, R, N> | null = null
  if (o.processor) {
    worker = new Worker<D, R, N>(o.name, o.processor, {
      connection: connectionOf(o.redis, { ...base, maxRetriesPerRequest: null, connectionName: connectionName('worker') }),
      prefix,
      concurrency: o.concurrency ?? 1,
      ...o.worker,
      autorun: false,
    })
    worker.on('error', onRedisError('worker'))
    guardClosedConnectionErrors(worker)
    runWhenReady(worker as unknown as Worker, log, label, () => closing !== undefined)
  }
  // The lifecycle helpers take any pair: BullMQ's generics do not widen by themselves.
  const anyQueue = queue as unknown as Queue
  const anyWorker = worker as unknown as Worker | null
  const clients = trackClients(anyQueue, anyWorker)

  return {
    queue,
    worker,
    add: (name, data, opts) => withinMs(anyQueue.add(name, data, opts), o.addTimeoutMs ?? 2000),
    isClosing: () => closing !== undefined,
    close: () => (closing ??= closePair({ queue: anyQueue, worker: anyWorker, clients, log, label }, o.closeTimeoutMs ?? 10_000)),
  }
}
