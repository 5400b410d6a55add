// GET /v1/batches/{id}/results: what is finished so far, as NDJSON in index order, one line
// per item with its evidence; `from` resumes an interrupted download.
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Readable } from 'node:stream'
import { problemResponses } from '../../problems/schema.js'
import { readResults } from '../store.js'
import { consumerOnly, idParam, NDJSON, own, sec } from './shared.js'

const resultLineSchema = {
  type: 'object',
  description: 'One line of the results stream',
  required: ['index', 'status', 'requestId', 'evidence'],
  properties: {
    index: { type: 'integer', description: 'position of the item in the submission, from 0' },
    status: { type: 'integer', description: 'the HTTP status a single query would have had', examples: [200] },
    requestId: { type: 'string', description: '<batch id>.<index>: the request id of the item\'s audit record' },
    body: { type: 'object', additionalProperties: true, description: 'the answer (status < 400)', examples: [{ match: true }] },
    problem: { $ref: 'problem#' },
    evidence: { type: 'string', description: 'Tongban-Evidence of the item (base64url JSON); responseDigest = sha256(JCS(body or problem))' },
    dataNotice: {
      type: 'string',
      description: 'the Tongban-Data-Notice a single query would have carried (the provider corrected this subject\'s data); absent otherwise. Outside the evidence, like the header',
      examples: ['corrected; dispute="01JDISPUTE0000000000000000"; effective="2026-12-02"; items="match"'],
    },
  },
  examples: [{ index: 0, status: 200, requestId: '01JBATCH0000000000000000AA.0', body: { match: true }, evidence: 'eyJ2IjoxLC4uLn0' }],
}

const resultsSchema = {
  tags: ['batches'],
  summary: 'Results so far, as NDJSON in index order (one line per finished item, with its evidence)',
  description:
    'Available while the batch runs (what is finished so far) and after it ends. `from` resumes an interrupted download. ' +
    'The header Tongban-Batch-Status tells whether more will come.',
  security: sec,
  params: idParam,
  querystring: { type: 'object', properties: { from: { type: 'string', pattern: '^[0-9]{1,9}$', description: 'first index to return (default 0)' } } },
  response: {
    200: { description: 'NDJSON, one result a line', content: { [NDJSON]: { schema: resultLineSchema } } },
    ...problemResponses(401, 403, 404),
  },
}

export default async function results(app: FastifyInstance) {
  app.get<{ Params: { id: string }; Querystring: { from?: string } }>('/v1/batches/:id/results', {
    onRequest: consumerOnly(app),
    config: { audit: { operation: 'batch.results', evidence: false } },
    schema: resultsSchema,
  }, async (request, reply: FastifyReply) => {
    const b = await own(app, request)
    request.audit.operation = 'batch.results'
    const lines = async function* () {
      for await (const r of readResults(app.db, b.id, Number(request.query.from ?? 0))) {
        const notice = r.dataNotice === null ? '' : `,"dataNotice":${JSON.stringify(r.dataNotice)}`
        yield `{"index":${r.idx},"status":${r.status},"requestId":${JSON.stringify(r.requestId)},"${r.ok ? 'body' : 'problem'}":${r.body},"evidence":${JSON.stringify(r.evidence)}${notice}}\n`
      }
    }
    reply.type(NDJSON).header('tongban-batch-status', b.status)
    // The audit step seals the download's record at the stream's end, over the bytes sent
    // (src/audit/stream.ts): unbounded, so not built in memory first.
    return reply.send(Readable.from(lines(), { objectMode: false }))
  })
}
