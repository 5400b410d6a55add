// DELETE /v1/batches/{id}: no item starts after this; finished items keep their results.
import type { FastifyInstance } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import { cancelBatch } from '../store.js'
import { consumerOnly, idParam, me, own, progressSchema, sec, view } from './shared.js'

export default async function cancel(app: FastifyInstance) {
  app.delete<{ Params: { id: string } }>('/v1/batches/:id', {
    onRequest: consumerOnly(app),
    config: { audit: { operation: 'batch.cancel' } },
    schema: {
      tags: ['batches'],
      summary: 'Cancel a batch: no item starts after this; finished items keep their results',
      security: sec,
      params: idParam,
      response: { 200: progressSchema, ...problemResponses(401, 403, 404, 409) },
    },
  }, async (request) => {
    const b = await own(app, request)
    request.audit.operation = 'batch.cancel'
    const r = await cancelBatch(app.db, b.id, me(request).system)
    if (!r) throw new Problem(404, 'BATCH_NOT_FOUND', 'no such batch')
    if (!r.changed && r.batch.status === 'completed') throw new Problem(409, 'BATCH_FINISHED', 'the batch has already completed')
    return view(r.batch)
  })
}
