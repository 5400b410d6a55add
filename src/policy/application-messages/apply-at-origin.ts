// Back at the consumer's node: the owner's answer (accepted, decision, refused) or a hop's
// undeliverable notice updates the local copy of the application and its history.
// Conditional updates: a redelivery changes nothing. Grants stay at the owner.
import type { PoolClient } from 'pg'
import { Problem } from '../../problems/problem.js'
import * as store from '../applications.js'
import { problemAt, threadOf, type Message, type MessagesContext } from './message.js'

export async function applyAtOrigin(x: MessagesContext, m: Message): Promise<'applied' | 'duplicate'> {
  const outcome = await applyInTx(x, m)
  // The applying department hears of the decision (or the owner's refusal) where it lives.
  if (outcome === 'applied' && (m.kind === 'decision' || m.kind === 'refused')) {
    const a = await store.getApplication(x.app.db, threadOf(m))
    if (a) await x.app.notify.decided(a)
  }
  return outcome
}

function applyInTx(x: MessagesContext, m: Message): Promise<'applied' | 'duplicate'> {
  return store.inTransaction(x.app.db, async (c) => {
    const { rows } = await c.query('SELECT owner_node, delivery, resource FROM applications WHERE id = $1 FOR UPDATE', [threadOf(m)])
    const a = rows[0]
    if (!a || !a.delivery || a.resource !== m.resource) throw new Problem(404, 'APPLICATION_NOT_FOUND', `node ${x.self.id} holds no application ${threadOf(m)} sent from here for resource ${m.resource}`)
    // Only the node that holds the resource answers for it; the first answer names it.
    if (m.kind !== 'undeliverable' && a.owner_node && a.owner_node !== m.from) {
      throw new Problem(403, 'APPLICATION_NOT_OWNER', `node ${m.from} does not hold resource ${m.resource}; node ${a.owner_node} does`)
    }
    const apply = APPLY[m.kind]
    if (!apply || !hasContent(m)) throw new Problem(400, 'TIERS_MESSAGE_INVALID', `a ${m.kind} message without its content`)
    return (await apply(c, m, `node:${m.from}`)) ? 'applied' : 'duplicate'
  })
}

/** What a message reports must come with it; an accepted notice's details default (see below). */
const hasContent = (m: Message): boolean => (m.kind === 'accepted' ? true : m.kind === 'decision' ? !!m.decision : !!m.problem)

/** Per kind: the conditional update and its history event; false when it changed nothing. */
type Apply = (c: PoolClient, m: Message, actor: string) => Promise<boolean>

const APPLY: Partial<Record<Message['kind'], Apply>> = {
  accepted: async (c, m, actor) => {
    const x = m.accepted ?? { providerDepartment: null, dueAt: null, createdAt: m.at }
    const changed = (await c.query(
      `UPDATE applications SET delivery = 'delivered', delivery_error = NULL, delivery_at = now(), owner_node = $2,
         provider_department = coalesce($3, provider_department), due_at = coalesce($4::timestamptz, due_at)
       WHERE id = $1 AND delivery IN ('forwarding', 'failed')`,
      [threadOf(m), m.from, x.providerDepartment, x.dueAt],
    )).rowCount
    if (changed) await store.event(c, threadOf(m), actor, 'delivered', { owner: m.from, dueAt: x.dueAt })
    return !!changed
  },
  decision: async (c, m, actor) => {
    const x = m.decision!
    const changed = (await c.query(
      `UPDATE applications SET status = $2, decided_at = $3, decided_by = $4, decision_reason = $5, remote_grant_id = $6, granted = $7,
         delivery = 'delivered', delivery_error = NULL, delivery_at = now(), owner_node = $8
       WHERE id = $1 AND status = 'pending'`,
      [threadOf(m), x.status, x.decidedAt, x.decidedBy, x.reason, x.grantId, x.granted, m.from],
    )).rowCount
    if (changed) {
      await store.event(c, threadOf(m), x.decidedBy ?? actor, x.status, {
        node: m.from, reason: x.reason, ...(x.grantId ? { grant: x.grantId, ...x.granted } : {}),
      })
    }
    return !!changed
  },
  refused: async (c, m, actor) => {
    const p = m.problem!
    const changed = (await c.query(
      `UPDATE applications SET status = 'rejected', decided_at = now(), decided_by = $2, decision_reason = $3,
         delivery = 'refused', delivery_error = $4, delivery_at = now(), owner_node = $5
       WHERE id = $1 AND status = 'pending'`,
      [threadOf(m), actor, p.detail || p.code, problemAt(p) ?? `INTERNAL@${m.from}`, m.from],
    )).rowCount
    if (changed) await store.event(c, threadOf(m), actor, 'refused', { code: p.code, node: p.node, detail: p.detail })
    return !!changed
  },
  undeliverable: async (c, m, actor) => {
    const p = m.problem!
    const changed = (await c.query(
      `UPDATE applications SET delivery = 'failed', delivery_error = $2, delivery_at = now() WHERE id = $1 AND delivery = 'forwarding'`,
      [threadOf(m), problemAt(p) ?? `INTERNAL@${m.from}`],
    )).rowCount
    if (changed) await store.event(c, threadOf(m), actor, 'delivery-failed', { code: p.code, node: p.node })
    return !!changed
  },
}
