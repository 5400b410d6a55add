// Operators (or the applying department) re-queue what this node gave up on:
// POST /v1/tiers/applications/{id}/requeue.
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import * as store from '../applications.js'
import { APP_ID, type MessagesContext } from './message.js'
import type { Outbox } from './outbox.js'

/** Puts an application's failed messages back in the outbox; the ids re-queued. */
export async function requeue(x: MessagesContext, outbox: Outbox, applicationId: string): Promise<string[]> {
  const { app, self } = x
  const ids = await store.inTransaction(app.db, async (c) => {
    const { rows: apps } = await c.query(`UPDATE applications SET delivery = 'forwarding', delivery_error = NULL, delivery_at = now() WHERE id = $1 AND delivery = 'failed' RETURNING id`, [applicationId])
    // At the origin a failed delivery may have failed further on: the submit goes again.
    const { rows } = await c.query(
      `UPDATE application_messages SET state = 'queued', attempts = 0, last_error = NULL, updated_at = now()
       WHERE application_id = $1 AND (state = 'failed' OR ($2 AND kind = 'submit' AND received_from IS NULL)) RETURNING id`,
      [applicationId, apps.length > 0],
    )
    if (apps.length) await store.event(c, applicationId, `node:${self.id}`, 'requeued', { messages: rows.map((r) => r.id) })
    return rows.map((r) => r.id as string)
  })
  for (const id of ids) await outbox.enqueue(id)
  return ids
}

export function registerRequeueRoute(x: MessagesContext, outbox: Outbox): void {
  const { app } = x
  app.post<{ Params: { id: string } }>('/v1/tiers/applications/:id/requeue', {
    onRequest: [app.authenticate],
    config: { audit: { operation: 'application.requeue' } },
    schema: {
      tags: ['tiers'],
      summary: "Re-queue an application's messages this node gave up on (delivery failed); the operator's or the applying department's call",
      security: [{ bearer: [] }],
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: APP_ID.source } } },
      response: {
        200: { type: 'object', properties: { application: { type: 'string' }, requeued: { type: 'array', items: { type: 'string' } } } },
        ...problemResponses(401, 403, 404, 409),
      },
    },
  }, async (request) => {
    const p = request.principal!
    const { rows } = await app.db.query('SELECT consumer_department, resource FROM applications WHERE id = $1', [request.params.id])
    const known = rows[0] ?? (await app.db.query('SELECT 1 FROM application_messages WHERE application_id = $1 LIMIT 1', [request.params.id])).rows[0]
    // An operator of this node, or the applying department (others learn nothing of it).
    const mine = p.roles.includes('consumer') && rows[0]?.consumer_department === p.department
    if (!(p.roles.includes('operator') ? known : mine)) throw new Problem(404, 'APPLICATION_NOT_FOUND', 'no such application')
    if (rows[0]) request.audit.resource = rows[0].resource
    const requeued = await requeue(x, outbox, request.params.id)
    if (requeued.length === 0) throw new Problem(409, 'TIERS_NOTHING_TO_REQUEUE', 'no message of this application has failed at this node')
    return { application: request.params.id, requeued }
  })
}
