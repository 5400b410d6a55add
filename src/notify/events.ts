// The one module that turns workflow events into notices (docs/notifications.md): who is
// told of what. The policy step calls it where each event happens (src/policy/plugin.ts,
// the decision coming back in src/policy/application-messages/apply-at-origin.ts). A failure
// to notify never undoes the event: it is logged.
import type { FastifyBaseLogger } from 'fastify'
import type { Db } from '../stores/postgres.js'
import { addNotice } from './inbox.js'
import { disputeTexts, texts, type DisputeNoticeKind, type DisputeWords, type NotificationKind } from './texts.js'

/** What notices need of an application (structural: this folder does not import the policy step). */
export interface ApplicationFacts {
  id: string
  resource: string
  consumerDepartment: string
  providerDepartment: string | null
  status: string
  dueAt: string | null
  decisionReason: string | null
}
export interface GrantFacts {
  id: string
  applicationId: string
  resource: string
  consumerDepartment: string
  consumerSystem: string | null
}

/** Sends a new notice on (webhook, e-mail: src/notify/delivery); never throws. */
export type SendOn = (notice: { id: string; department: string }) => Promise<void>

export class Notifier {
  constructor(
    private readonly db: Db,
    private readonly log: FastifyBaseLogger,
    private readonly resourceName: (code: string) => string,
    private readonly sendOn: SendOn = async () => {},
  ) {}

  /** Submitted: the providing department is asked to decide. */
  submitted(a: ApplicationFacts): Promise<void> {
    return a.providerDepartment ? this.tell(a.providerDepartment, null, 'application', a, `application:${a.id}`) : Promise.resolve()
  }
  reminder(a: ApplicationFacts): Promise<void> {
    return a.providerDepartment ? this.tell(a.providerDepartment, null, 'reminder', a, `reminder:${a.id}`) : Promise.resolve()
  }
  escalation(a: ApplicationFacts): Promise<void> {
    return a.providerDepartment ? this.tell(a.providerDepartment, null, 'escalation', a, `escalation:${a.id}`) : Promise.resolve()
  }
  /** Decided (here, or at the owning node and come back): the applying department is told. */
  decided(a: ApplicationFacts): Promise<void> {
    return this.tell(a.consumerDepartment, null, 'decision', a, `decision:${a.id}`)
  }
  revoked(g: GrantFacts): Promise<void> {
    return this.tell(g.consumerDepartment, g.consumerSystem, 'revocation', { id: g.applicationId, resource: g.resource }, `revocation:${g.id}`)
  }
  expired(g: GrantFacts): Promise<void> {
    return this.tell(g.consumerDepartment, g.consumerSystem, 'expiry', { id: g.applicationId, resource: g.resource }, `expiry:${g.id}`)
  }

  /**
   * A dispute's event (src/disputes/): the providing department is told of a dispute, its
   * reminder and escalation; the disputing department of the resolution; other consumers of a
   * correction. `ref` makes a repeated job or retry tell nobody twice.
   */
  async dispute(kind: DisputeNoticeKind, department: string, d: { id: string; resource: string; dueAt?: string | null } & DisputeWords, ref: string): Promise<void> {
    try {
      const t = disputeTexts(kind, this.resourceName(d.resource), d)
      const id = await addNotice(this.db, { department, system: null, kind, ...t, link: `/v1/disputes/${d.id}`, ref })
      if (id) await this.sendOn({ id, department })
    } catch (err) {
      this.log.error({ err, kind, ref }, 'notification could not be recorded')
    }
  }

  private async tell(department: string, system: string | null, kind: Exclude<NotificationKind, DisputeNoticeKind>, a: Pick<ApplicationFacts, 'id' | 'resource'> & Partial<ApplicationFacts>, ref: string): Promise<void> {
    try {
      const t = texts(kind, this.resourceName(a.resource), { status: a.status, dueAt: a.dueAt, reason: a.decisionReason })
      const id = await addNotice(this.db, { department, system, kind, ...t, link: `/v1/applications/${a.id}`, ref })
      if (id) await this.sendOn({ id, department })
    } catch (err) {
      this.log.error({ err, kind, ref }, 'notification could not be recorded')
    }
  }
}
