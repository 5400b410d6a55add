// Notifications (docs/notifications.md): `app.notify` (events.ts) records notices in the
// inbox of the department concerned; the routes let a department's systems and people read
// theirs and mark them read. Where a department has a webhook or a mailbox configured, each
// new notice is also sent there (delivery/), and the delivery log is readable here.
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import type { Principal } from '../auth/principal.js'
import { Notifier } from './events.js'
import { listNotices, markRead, type Reader } from './inbox.js'
import { createDeliverer } from './delivery/queue.js'
import { listDeliveries, type Channel, type DeliveryStatus } from './delivery/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    notify: Notifier
  }
}

const sec = [{ bearer: [] }]
const text = { type: 'object', required: ['zh', 'en'], properties: { zh: { type: 'string' }, en: { type: 'string' } } }
const notificationSchema = {
  type: 'object',
  required: ['id', 'kind', 'title', 'body', 'createdAt', 'readAt'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['reminder', 'escalation', 'decision', 'revocation', 'expiry', 'application', 'dispute', 'dispute-reminder', 'dispute-escalation', 'dispute-resolution', 'data-correction'] },
    title: text,
    body: text,
    link: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    readAt: { type: ['string', 'null'], format: 'date-time' },
  },
}
const ID = '^[0-9A-HJKMNP-TV-Z]{26}$'
const deliverySchema = {
  type: 'object',
  required: ['id', 'notificationId', 'department', 'channel', 'target', 'status', 'attempts', 'lastError', 'createdAt', 'updatedAt', 'deliveredAt'],
  properties: {
    id: { type: 'string' },
    notificationId: { type: 'string' },
    department: { type: 'string' },
    channel: { type: 'string', enum: ['webhook', 'email'] },
    target: { type: 'string', description: 'the webhook URL or the e-mail address' },
    status: { type: 'string', enum: ['queued', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    lastError: { type: ['string', 'null'], description: 'e.g. HTTP 503, timeout after 10000 ms, SMTP 550' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    deliveredAt: { type: ['string', 'null'], format: 'date-time' },
  },
}

const reader = (request: FastifyRequest): Reader => {
  const p = request.principal as Principal
  return { department: p.department, system: p.system }
}

export default fp(
  async function notify(app) {
    const resourceName = (code: string) => app.catalog.get(code)?.name ?? (app.catalog.elsewhere?.get(code)?.resource.name as string | undefined) ?? code
    const deliverer = createDeliverer(app)
    app.addHook('onClose', () => deliverer.close())
    app.decorate('notify', new Notifier(app.db, app.log, resourceName, (n) => deliverer.send(n)))

    app.get<{ Querystring: { status?: DeliveryStatus; channel?: Channel; before?: string; limit?: string } }>('/v1/notifications/deliveries', {
      onRequest: [app.authenticate],
      schema: {
        tags: ['notifications'],
        summary: "Delivery log of the caller's department's notices (webhook, e-mail), newest first; operators see every department's",
        security: sec,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['queued', 'delivered', 'failed'] },
            channel: { type: 'string', enum: ['webhook', 'email'] },
            before: { type: 'string', pattern: ID, description: 'deliveries older than this one' },
            limit: { type: 'string', pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', description: '1-200 (default 50)' },
          },
        },
        response: { 200: { type: 'object', required: ['deliveries'], properties: { deliveries: { type: 'array', items: deliverySchema } } }, ...problemResponses(400, 401) },
      },
    }, async (request) => {
      const p = request.principal as Principal
      const q = request.query
      return { deliveries: await listDeliveries(app.db, { department: p.roles.includes('operator') ? null : p.department, status: q.status, channel: q.channel, before: q.before, limit: Number(q.limit ?? 50) }) }
    })

    app.get<{ Querystring: { unread?: 'true' | 'false'; before?: string; limit?: string } }>('/v1/notifications', {
      onRequest: [app.authenticate],
      schema: {
        tags: ['notifications'],
        summary: "The caller's department's notices (消息), newest first; `before` pages on (the last id seen)",
        security: sec,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            unread: { type: 'string', enum: ['true', 'false'], description: 'true: only notices not yet read' },
            before: { type: 'string', pattern: ID, description: 'notices older than this one' },
            limit: { type: 'string', pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', description: '1-200 (default 50)' },
          },
        },
        response: { 200: { type: 'object', required: ['notifications'], properties: { notifications: { type: 'array', items: notificationSchema } } }, ...problemResponses(400, 401) },
      },
    }, async (request) => ({ notifications: await listNotices(app.db, reader(request), { unread: request.query.unread === 'true', before: request.query.before, limit: Number(request.query.limit ?? 50) }) }))

    app.post<{ Params: { id: string } }>('/v1/notifications/:id/read', {
      onRequest: [app.authenticate],
      schema: {
        tags: ['notifications'],
        summary: 'Mark a notice read (the first time counts)',
        security: sec,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: ID } } },
        response: { 200: notificationSchema, ...problemResponses(400, 401, 404) },
      },
    }, async (request) => {
      const n = await markRead(app.db, reader(request), request.params.id)
      if (!n) throw new Problem(404, 'NOTIFICATION_NOT_FOUND', 'no such notice for your department')
      return n
    })
  },
  { name: 'notify', dependencies: ['stores', 'node-identity', 'auth', 'catalog'] },
)
