// Disputes (疑义数据校核, docs/disputes.md): a consumer disputes an answer it received, the
// providing department resolves it by a deadline in working days (reminder and escalation
// by BullMQ jobs), the consumer is told; a correction tells the other consumers of the same
// subject (found in the audit log by the keyed hash) and later answers carry
// Tongban-Data-Notice. Every step is sealed like an answer.
import fp from 'fastify-plugin'
import { addWorkingDays } from '../policy/calendar.js'
import { REASONS, RESOLUTIONS } from './codes.js'
import { createDisputeJobs } from './deadline-queue.js'
import { sealStep } from './history.js'
import { DataNotices } from './notices.js'
import { disputeRoutes } from './routes.js'
import { disputeTiers } from './tiers.js'
import { markDeadline, type Dispute } from './store.js'
import { bullPrefix } from '../stores/redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    dataNotices: DataNotices
  }
}

const BUS = 'disputes'

export default fp(
  async function disputes(app) {
    const { config } = app
    const calendar = app.workingCalendar
    const c = config.disputes
    const dueDate = (from: Date) => {
      if (c.deadlineSeconds > 0) return { dueAt: new Date(from.getTime() + c.deadlineSeconds * 1000), remindAt: new Date(from.getTime() + c.deadlineSeconds * 500) }
      return {
        dueAt: addWorkingDays(from, c.workingDays, calendar),
        remindAt: c.reminderWorkingDays > 0 ? addWorkingDays(from, Math.max(0, c.workingDays - c.reminderWorkingDays), calendar) : null,
      }
    }

    const notices = new DataNotices(app.db)
    await notices.load()
    app.decorate('dataNotices', notices)
    app.answerNotes.push(notices.note)
    const reload = () => notices.load().catch((e) => app.log.error({ err: e }, 'data notices reload failed'))
    app.bus.subscribe(BUS, reload)
    const refresh = setInterval(reload, 30_000)
    refresh.unref()

    const words = (d: Dispute) => ({
      id: d.id,
      resource: d.resource,
      dueAt: d.dueAt,
      reason: REASONS[d.reason],
      resolution: d.resolution ? RESOLUTIONS[d.resolution] : undefined,
      note: d.resolutionNote,
      effectiveFrom: d.effectiveFrom,
    })
    const step = (action: 'reminded' | 'escalated') => (cl: Parameters<typeof sealStep>[1], d: Dispute) =>
      sealStep(app, cl, d, { action, actor: 'tongban-disputes', principal: null, detail: { dueAt: d.dueAt } })

    const jobs = createDisputeJobs({
      redis: config.redis,
      prefix: bullPrefix(config.redis),
      log: app.log,
      handlers: {
        onReminder: async (id, now) => {
          const d = await markDeadline(app.db, id, 'reminded', now, step('reminded'))
          if (d) await app.notify.dispute('dispute-reminder', d.providerDepartment!, words(d), `dispute-reminder:${d.id}`)
        },
        onEscalation: async (id, now) => {
          const d = await markDeadline(app.db, id, 'escalated', now, step('escalated'))
          if (!d) return
          app.log.warn({ dispute: id }, 'dispute overdue: escalated')
          await app.notify.dispute('dispute-escalation', d.providerDepartment!, words(d), `dispute-escalation:${d.id}`)
        },
      },
    })
    app.addHook('onClose', async () => {
      clearInterval(refresh)
      await jobs.close()
    })
    // Jobs are the alarm clock: a queue outage must not lose the filing itself.
    const quietly = (what: string, p: Promise<unknown>) => p.catch((e) => app.log.error({ err: e }, `${what} failed`))

    const corrected = async (d: Dispute) => {
      if (d.resolution !== 'CORRECTED') return
      await notices.load()
      await app.bus.publish(BUS, d.id).catch(() => {})
    }
    const onFiled = async (d: Dispute) => {
      const { remindAt } = dueDate(new Date(d.createdAt))
      await quietly('scheduling the dispute deadline', jobs.schedule(d.id, new Date(d.dueAt!), remindAt))
      await app.notify.dispute('dispute', d.providerDepartment!, words(d), `dispute:${d.id}`)
    }
    const tell = (d: Dispute) => app.notify.dispute('dispute-resolution', d.consumerDepartment, words(d), `dispute-resolution:${d.id}`)
    // Across tiers: filed at the owner, resolved there, the resolution told at the consumer's node (tiers.ts).
    const tiers = disputeTiers(app, app.tierMessages ?? null, {
      dueDate,
      onFiled,
      onResolvedHere: async (d) => {
        await tell(d)
        await corrected(d)
      },
    })

    await app.register(disputeRoutes, {
      dueDate,
      calendar,
      onFiled,
      fileElsewhere: tiers.fileElsewhere,
      inResolveTx: tiers.inResolveTx,
      onResolved: async (d, told) => {
        await quietly('cancelling the dispute deadline', jobs.cancel(d.id))
        // A dispute from another node: its department is told there, when the resolution arrives.
        if (d.originNode) await tiers.flushResolution(d)
        else await tell(d)
        for (const t of told) await app.notify.dispute('data-correction', t.department, words(d), `data-correction:${d.id}:${t.department}`)
        await corrected(d)
      },
    })
  },
  { name: 'disputes', dependencies: ['stores', 'audit', 'auth', 'catalog', 'policy', 'notify', 'exchange'] },
)
