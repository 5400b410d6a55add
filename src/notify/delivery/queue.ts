// The `notify-deliveries` queue: one BullMQ job per delivery row (jobId = its id) sends a
// notice to the department's webhook or mailbox, retried with exponential backoff. Every
// attempt is written to the delivery log; the last one (or a refusal retrying cannot change)
// leaves it `failed` there, for the department and operators to see.
import { UnrecoverableError } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import { createQueuePair, type QueuePair } from '../../queues/factory.js'
import { sendMail, smtpTransport } from './email.js'
import { noticePayload, type NoticeRow } from './payload.js'
import { webhookSigner } from './signature.js'
import { addDelivery, markAttemptFailed, markDelivered, queuedDelivery, type Channel } from './store.js'
import { PermanentFailure, postWebhook } from './webhook.js'
import { bullPrefix } from '../../stores/redis.js'

export const DELIVERY_QUEUE = 'notify-deliveries'

export interface Deliverer {
  /** Queues the notice to each channel its department has; never throws (logged). */
  send(notice: { id: string; department: string }): Promise<void>
  close(): Promise<void>
}

export function createDeliverer(app: FastifyInstance): Deliverer {
  const { config, log } = app
  const c = config.notify
  const sign = webhookSigner(app.identity.keyPem, app.identity.kid)
  const mail = c.smtpHost ? smtpTransport({ host: c.smtpHost, port: c.smtpPort, secure: c.smtpSecure, from: c.smtpFrom, timeoutMs: c.timeoutMs }) : null

  const attempt = async (id: string): Promise<void> => {
    const found = await queuedDelivery(app.db, id)
    if (!found) return
    const { delivery: d, notice } = found
    const n = notice as NoticeRow
    if (d.channel === 'webhook') {
      await postWebhook(d.target, d.id, JSON.stringify(noticePayload(n, config.node.id)), sign, c.timeoutMs)
    } else {
      if (!mail) throw new PermanentFailure('SMTP not configured')
      await sendMail(mail, c.smtpFrom, d.target, n, config.node.publicUrl)
    }
    await markDelivered(app.db, d.id)
    log.info({ delivery: d.id, channel: d.channel, department: d.department }, 'notification delivered')
  }

  const pair: QueuePair<{ id: string }, void, string, any> = createQueuePair<{ id: string }, void, string>({
    name: DELIVERY_QUEUE,
    redis: config.redis,
    prefix: bullPrefix(config.redis),
    clientName: 'notify',
    label: 'notification deliveries',
    log,
    processor: c.worker
      ? async (job) => {
          const id = String(job.data?.id)
          try {
            await attempt(id)
          } catch (err) {
            const permanent = err instanceof PermanentFailure
            const final = permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
            const msg = (err as Error).message
            await markAttemptFailed(app.db, id, msg, final)
            log.warn({ delivery: id, attempt: job.attemptsMade + 1, error: msg, gaveUp: final }, final ? 'notification delivery: given up' : 'notification delivery: failed, will retry')
            throw permanent ? new UnrecoverableError(msg) : err
          }
        }
      : null,
    concurrency: 4,
    defaultJobOptions: {
      attempts: c.attempts,
      backoff: { type: 'exponential', delay: c.backoffMs },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 10_000 },
    },
    closeTimeoutMs: 5000,
  })

  const channels = (department: string): Array<[Channel, string]> => {
    const out: Array<[Channel, string]> = []
    const url = c.webhooks[department]
    if (url) out.push(['webhook', url])
    const to = c.emails[department]
    if (to && mail) out.push(['email', to])
    return out
  }

  return {
    async send(notice) {
      for (const [channel, target] of channels(notice.department)) {
        let id: string | null = null
        try {
          id = await addDelivery(app.db, { notificationId: notice.id, department: notice.department, channel, target })
          if (id) await pair.add('deliver', { id }, { jobId: id })
        } catch (err) {
          // The row stays queued with the reason: seen in the log, not lost.
          log.error({ err, notification: notice.id, channel }, 'notification delivery could not be queued')
          if (id) await markAttemptFailed(app.db, id, 'the delivery queue (Redis) did not take the job', false, false).catch(() => {})
        }
      }
    },
    async close() {
      await pair.close()
      mail?.close()
    },
  }
}
