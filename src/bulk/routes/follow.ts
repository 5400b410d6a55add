// Following batches: the calling system's recent ones, and one's progress.
import type { FastifyInstance } from 'fastify'
import { problemResponses } from '../../problems/schema.js'
import { listBatches } from '../store.js'
import { consumerOnly, idParam, me, own, progressSchema, sec, view } from './shared.js'

export default async function follow(app: FastifyInstance) {
  app.get<{ Querystring: { limit?: string } }>('/v1/batches', {
    onRequest: consumerOnly(app),
    schema: {
      tags: ['batches'],
      summary: "The calling system's recent batches, newest first",
      security: sec,
      querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', description: '1–200, default 50' } } },
      response: { 200: { type: 'object', properties: { batches: { type: 'array', items: progressSchema } } }, ...problemResponses(401, 403) },
    },
  }, async (request) => ({ batches: (await listBatches(app.db, me(request).system, Number(request.query.limit ?? 50))).map(view) }))

  app.get<{ Params: { id: string } }>('/v1/batches/:id', {
    onRequest: consumerOnly(app),
    schema: {
      tags: ['batches'],
      summary: 'Progress of a batch: done, succeeded, failed, rate and ETA',
      security: sec,
      params: idParam,
      response: { 200: progressSchema, ...problemResponses(401, 403, 404) },
    },
  }, async (request) => view(await own(app, request)))
}
