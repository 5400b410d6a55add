// Sharing rules: the grant cache (reloaded on every replica when any replica changes a
// grant), the admission script in Redis, the deadline and expiry jobs, and the routes for
// applications and grants. Exposes `app.policy.authorize` to the exchange pipeline.
import fp from 'fastify-plugin'
import { ApplicationMessages, asPreHandler } from './application-messages/index.js'
import { Problem } from '../problems/problem.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { Principal } from '../auth/principal.js'
import { GrantCache } from './grants.js'
import { authorize, type Authorization } from './authorize.js'
import { QuotaAdmissions, revokedKey } from './quota.js'
import { RateLeases } from './rate-lease.js'
import { loadPurposes, type Purpose } from './purposes.js'
import { addWorkingDays, loadCalendar, type WorkingCalendar } from './calendar.js'
import { calendarCoverage, coverageMessage, type CalendarCoverage } from './calendar-coverage.js'
import { expireGrant, getApplication, getGrant, markDeadlineEvent } from './applications.js'
import { policyRoutes } from './routes.js'
import { createJobs, type Jobs } from './deadline-queue.js'
import { cancelApplicationDeadline, cancelGrantExpiry, scheduleApplicationDeadline, scheduleGrantExpiry } from './deadlines.js'
import { bullPrefix, writeReplicated } from '../stores/redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    purposes: Map<string, Purpose>
    grants: GrantCache
    jobs: Jobs
    policy: { authorize(resource: CatalogResource, principal: Principal, purpose: string): Promise<Authorization> }
    /** How many days ahead the holiday calendar is complete (src/policy/calendar-coverage.ts). */
    calendarCoverage(): CalendarCoverage
    /** The node's working calendar (config/holidays.json): deadlines in working days. */
    workingCalendar: WorkingCalendar
  }
}

export default fp(
  async function policy(app) {
    const { config } = app
    const purposes = loadPurposes(config.files.purposesFile)
    const calendar = loadCalendar(config.policy.holidaysFile)
    const coverage = () => calendarCoverage(new Date(), calendar, config.policy.calendarWarnDays)
    app.decorate('calendarCoverage', coverage)
    app.decorate('workingCalendar', calendar)
    app.metrics?.watchCalendar(() => coverage().daysCovered)
    // At start and once a day: the notice for next year is due in November.
    const warnIfShort = () => {
      const c = coverage()
      if (c.warning) app.log.warn({ calendar: { daysCovered: c.daysCovered, coveredUntil: c.coveredUntil, warnDays: c.warnDays, file: config.policy.holidaysFile } }, coverageMessage(c))
    }
    warnIfShort()
    const daily = setInterval(warnIfShort, 86_400_000)
    daily.unref()
    const grants = new GrantCache(app.db)
    await grants.load()
    app.bus.subscribe('grants', () => {
      grants.load().catch((e) => app.log.error({ err: e }, 'grant cache reload failed'))
    })
    // Safety net for a missed message: reload now and then anyway.
    const refresh = setInterval(() => grants.load().catch(() => {}), 30_000)
    refresh.unref()
    const quota = new QuotaAdmissions(app.replicatedWrites.client, app.replicatedWrites)
    const rate = config.policy.rateLimitPerSecond > 0 ? new RateLeases(app.redis, config.policy.rateLimitPerSecond, app.log) : null

    app.decorate('purposes', purposes)
    app.decorate('grants', grants)
    const deps = { grants, quota, rate }
    app.decorate('policy', { authorize: (r: CatalogResource, p: Principal, purpose: string) => authorize(deps, r, p, purpose) })

    const jobs = createJobs({
      redis: config.redis,
      prefix: bullPrefix(config.redis),
      log: app.log,
      handlers: {
        onReminder: async (id: string) => {
          if (await markDeadlineEvent(app.db, id, 'reminded')) {
            app.log.warn({ application: id }, 'application decision due soon')
            const a = await getApplication(app.db, id)
            if (a) await app.notify.reminder(a)
          }
        },
        onEscalation: async (id: string) => {
          if (await markDeadlineEvent(app.db, id, 'escalated')) {
            app.log.warn({ application: id }, 'application overdue: escalated')
            const a = await getApplication(app.db, id)
            if (a) await app.notify.escalation(a)
          }
        },
        onGrantExpired: async (id: string) => {
          if (await expireGrant(app.db, id)) {
            await app.bus.publish('grants', id)
            const g = await getGrant(app.db, id)
            if (g) await app.notify.expired(g)
          }
        },
      },
    })
    app.decorate('jobs', jobs)
    app.addHook('onClose', async () => {
      clearInterval(refresh)
      clearInterval(daily)
      await jobs.close()
    })

    // Jobs are bookkeeping (reminders, escalation records, status): a queue outage must not
    // lose the decision itself, so scheduling failures are logged, not thrown.
    const quietly = (what: string, p: Promise<unknown>) => p.catch((e) => app.log.error({ err: e }, `${what} failed`))

    // Due at the end of the Nth working day after submission; reminded some working days before.
    const dueDate = (from: Date) => ({
      dueAt: addWorkingDays(from, config.policy.decisionWorkingDays, calendar),
      remindAt: addWorkingDays(from, Math.max(0, config.policy.decisionWorkingDays - config.policy.reminderWorkingDays), calendar),
    })

    // Applications for resources held elsewhere travel as queued messages over the node
    // channel (a node in a tier tree); decisions come back the same way.
    const link = app.tiers.link
    const messages = link ? new ApplicationMessages({ app, ...link }) : null
    // Disputes about data held elsewhere use the same messages (src/disputes/tiers.ts).
    app.decorate('tierMessages', messages)
    if (messages) {
      app.decorate('applicationOutbox', messages.outbox)
      messages.register()
    }

    await app.register(policyRoutes, {
      purposes,
      routeApplication: messages ? asPreHandler(messages.originHook) : undefined,
      dueDate,
      calendar,
      onSubmitted: async (a) => {
        if (!a.dueAt) return // a copy at the consumer's node: the owning node keeps the deadline
        await app.notify.submitted(a)
        const dueAt = new Date(a.dueAt)
        const { remindAt } = dueDate(new Date(a.createdAt))
        await quietly('scheduling the decision deadline', scheduleApplicationDeadline(jobs.deadlines, { applicationId: a.id, dueAt, remindAt }))
      },
      onDecided: async (a, grant) => {
        await quietly('cancelling the decision deadline', cancelApplicationDeadline(jobs.deadlines, a.id))
        // The applying department is told here when it is local; otherwise where the decision arrives (apply-at-origin.ts).
        if (!a.originNode) await app.notify.decided(a)
        if (grant) {
          await app.bus.publish('grants', grant.id).catch(() => {})
          await grants.load()
          await quietly('scheduling the grant expiry', scheduleGrantExpiry(jobs.deadlines, { grantId: grant.id, expiresAt: grant.validTo }))
        }
      },
      markRevoked: async (g) => {
        const ttl = Math.max(60, Math.ceil((g.validTo.getTime() - Date.now()) / 1000) + 86400)
        try {
          const w = app.replicatedWrites
          const key = revokedKey(g.id, w.client)
          // Replicated first where there are replicas: a failover must not bring the grant back.
          if (w.replicas > 0) await writeReplicated(w.client, w, (p) => void p.set(key, '1', 'EX', ttl))
          else await app.redis.set(key, '1', 'EX', ttl)
        } catch {
          throw new Problem(503, 'REVOCATION_UNAVAILABLE', 'Redis is unavailable: the revocation could not be made binding on every replica; nothing was changed')
        }
      },
      onRevoked: async (g) => {
        await app.bus.publish('grants', g.id).catch(() => {})
        await grants.load()
        await quietly('cancelling the grant expiry', cancelGrantExpiry(jobs.deadlines, g.id))
        await app.notify.revoked(g)
      },
    })
  },
  { name: 'policy', dependencies: ['stores', 'auth', 'catalog', 'audit', 'tiers', 'notify'] },
)
