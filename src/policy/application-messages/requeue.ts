// Operators (or the applying or disputing department) re-queue what this node gave up on:
// POST /v1/tiers/applications/{id}/requeue, POST /v1/tiers/disputes/{id}/requeue.
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import * as store from '../applications.js'
import { APP_ID, type MessagesContext, type Topic } from './message.js'
import type { Outbox } from './outbox.js'

/** Per topic: the table of the origin's copy, the outbound kind, the route's words. */
const TOPICS = {
  application: { table: 'applications', outbound: 'submit', path: 'applications', notFound: 'APPLICATION_NOT_FOUND' },
  dispute: { table: 'disputes', outbound: 'dispute', path: 'disputes', notFound: 'DISPUTE_NOT_FOUND' },
} as const

/** Puts an application's (or a dispute's) failed messages back in the outbox; the ids re-queued. */
export async function requeue(x: MessagesContext, outbox: Outbox, id: string, topic: Topic = 'application'): Promise<string[]> {
  const { app, self } = x
  const t = TOPICS[topic]
  const ids = await store.inTransaction(app.db, async (c) => {
    const { rows: copies } = await c.query(`UPDATE ${t.table} SET delivery = 'forwarding', delivery_error = NULL, delivery_at = now() WHERE id = $1 AND delivery = 'failed' RETURNING id`, [id])
    // At the origin a failed delivery may have failed further on: the outbound message goes again.
    const { rows } = await c.query(
      `UPDATE application_messages SET state = 'queued', attempts = 0, last_error = NULL, updated_at = now()
       WHERE application_id = $1 AND (state = 'failed' OR ($2 AND kind = $3 AND received_from IS NULL)) RETURNING id`,
      [id, copies.length > 0, t.outbound],
    )
    if (copies.length && topic === 'application') await store.event(c, id, `node:${self.id}`, 'requeued', { messages: rows.map((r) => r.id) })
    return rows.map((r) => r.id as string)
  })
  for (const m of ids) await outbox.enqueue(m)
  return ids
}

export function registerRequeueRoute(x: MessagesContext, outbox: Outbox): void {
  const { app } = x
  for (const [topic, t] of Object.entries(TOPICS) as Array<[Topic, (typeof TOPICS)[Topic]]>) {
    app.post<{ Params: { id: string } }>(`/v1/tiers/${t.path}/:id/requeue`, {
      onRequest: [app.authenticate],
      config: { audit: { operation: `${topic}.requeue` } },
      schema: {
        tags: ['tiers'],
        summary: `Re-queue the messages of ${topic === 'application' ? 'an application' : 'a dispute'} this node gave up on (delivery failed); the operator's or the ${topic === 'application' ? 'applying' : 'disputing'} department's call`,
        security: [{ bearer: [] }],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: APP_ID.source } } },
        response: {
          200: { type: 'object', properties: { [topic]: { type: 'string' }, requeued: { type: 'array', items: { type: 'string' } } } },
          ...problemResponses(401, 403, 404, 409),
        },
      },
    }, async (request) => {
      const p = request.principal!
      const { rows } = await app.db.query(`SELECT consumer_department, resource FROM ${t.table} WHERE id = $1`, [request.params.id])
      const known = rows[0] ?? (await app.db.query('SELECT 1 FROM application_messages WHERE application_id = $1 LIMIT 1', [request.params.id])).rows[0]
      // An operator of this node, or the department that applied or disputed (others learn nothing of it).
      const mine = p.roles.includes('consumer') && rows[0]?.consumer_department === p.department
      if (!(p.roles.includes('operator') ? known : mine)) throw new Problem(404, t.notFound, `no such ${topic}`)
      if (rows[0]) request.audit.resource = rows[0].resource
      const requeued = await requeue(x, outbox, request.params.id, topic)
      if (requeued.length === 0) throw new Problem(409, 'TIERS_NOTHING_TO_REQUEUE', `no message of this ${topic} has failed at this node`)
      return { [topic]: request.params.id, requeued }
    })
  }
}
