// The outbox of application messages: a row per message in application_messages, written in
// the same transaction as the application change it reports, and a BullMQ job per row (job
// id `msg-<message id>`). A row whose job is missing (Redis away, a restart, a flush) is
// queued again by the sweeper.
import type { PoolClient } from 'pg'
import type { Queue } from 'bullmq'
import type * as store from '../applications.js'
import type { Grant } from '../grants.js'
import type { ApplicationOutbox } from '../routes.js'
import { newMessage, writeMessage, type MessagesContext } from './message.js'

const SWEEP_MS = 30_000

export class Outbox {
  private queue?: Queue
  private sweeper?: NodeJS.Timeout
  private stopped = false

  constructor(private readonly x: MessagesContext) {}

  /** At the owner: a provider's decision writes its message in the decision's transaction. */
  readonly decisions: ApplicationOutbox = {
    decided: async (c: PoolClient, a: store.Application, grant: Grant | null) => {
      if (!a.originNode) return
      const { self } = this.x
      const m = newMessage(self.id, a.id, 'decision', a.resource, a.originNode, {
        to: a.originNode,
        decision: {
          status: a.status === 'approved' ? 'approved' : 'rejected',
          reason: a.decisionReason,
          decidedAt: a.decidedAt,
          decidedBy: a.decidedBy,
          grantId: grant?.id ?? null,
          granted: grant ? { items: grant.items, validFrom: grant.validFrom.toISOString(), validTo: grant.validTo.toISOString(), dailyQuota: grant.dailyQuota } : null,
        },
      })
      await writeMessage(c, self.id, m, { sub: a.decidedBy ?? `node:${self.id}`, dept: a.providerDepartment ?? a.consumerDepartment, region: self.region, purpose: null, case: null })
    },
    flush: (applicationId: string) => void this.enqueue(`${applicationId}.decision`),
  }

  /** Adds the job of a queued message unless it is already waiting, delayed or running. Never throws. */
  async enqueue(id: string): Promise<void> {
    const queue = this.queue
    if (!queue || this.stopped) return // the sweeper queues it at start
    try {
      const jobId = `msg-${id}`
      const job = await queue.getJob(jobId)
      if (job) {
        const state = await job.getState()
        if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return
        await job.remove()
      }
      await queue.add('send', { id }, { jobId })
    } catch (err) {
      // The row is in PostgreSQL: the sweeper queues it when Redis is back.
      this.x.app.log.warn({ err: { message: (err as Error).message }, message: id }, 'application message: could not queue now')
    }
  }

  /** Queues every queued message older than `minAgeMs` (after a restart, a Redis outage, a flush). */
  async sweep(minAgeMs = 10_000): Promise<void> {
    if (this.stopped) return
    const { app } = this.x
    try {
      const { rows } = await app.db.query(
        `SELECT id FROM application_messages WHERE state = 'queued' AND updated_at <= now() - $1::int * interval '1 millisecond' ORDER BY updated_at LIMIT 1000`,
        [minAgeMs],
      )
      for (const r of rows) await this.enqueue(r.id)
    } catch (err) {
      app.log.warn({ err: { message: (err as Error).message } }, 'application messages: sweep failed')
    }
  }

  /** From now on rows go to `queue`; those written while Redis was away, or before a restart, at once. */
  start(queue: Queue): void {
    this.queue = queue
    void this.sweep(0)
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_MS)
    this.sweeper.unref()
  }

  stop(): void {
    this.stopped = true
    clearInterval(this.sweeper)
  }
}
