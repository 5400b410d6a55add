// An offline-verifiable bundle over HTTP, bounded so the audit record of the call can bind
// the exact bytes; larger ranges go through `tongban audit export`.
import type { FastifyInstance } from 'fastify'
import { PassThrough } from 'node:stream'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import { exportBundle, ExportTooLargeError } from '../bundle.js'
import { auditorRoute, filterProperties, requireOrderedRange } from './shared.js'

export const HTTP_EXPORT_MAX_RECORDS = 100_000

export default async function exportRoute(app: FastifyInstance) {
  const { config, identity } = app

  app.get('/v1/audit/export', auditorRoute(app, 'audit.export', {
    summary: 'Export an offline-verifiable bundle (auditor)',
    description: `The batches whose checkpoint time is in [from, to), whole, with their checkpoints, the node certificates and the CA chain, as NDJSON (see docs/audit.md). Verify with \`tongban audit verify <file> --ca ca.crt.pem\`. Up to ${HTTP_EXPORT_MAX_RECORDS} records here (the audit record of this call then binds the exact bytes); larger ranges with \`tongban audit export\`.`,
    querystring: {
      type: 'object',
      additionalProperties: false,
      required: ['from', 'to'],
      properties: { from: filterProperties.from, to: filterProperties.to, chain: filterProperties.chain },
    },
    response: { ...problemResponses(400, 401, 403, 413, 503) },
  }), async (request, reply) => {
    const q = request.query as { from: string; to: string; chain?: string }
    requireOrderedRange(q.from, q.to)
    const sink = new PassThrough()
    const chunks: Buffer[] = []
    sink.on('data', (d: Buffer) => chunks.push(d))
    try {
      await exportBundle(app.db, sink, {
        node: config.node.id, from: new Date(q.from), to: new Date(q.to), chain: q.chain,
        certificates: [identity.certPem], caChain: [identity.caPem], maxRecords: HTTP_EXPORT_MAX_RECORDS, compress: false,
      })
    } catch (e) {
      if (e instanceof ExportTooLargeError) throw new Problem(413, 'AUDIT_EXPORT_TOO_LARGE', `${e.message}; use tongban audit export`)
      throw e
    }
    const name = `audit-${config.node.id}-${q.from.slice(0, 10)}-${q.to.slice(0, 10)}.tongban-audit.jsonl`
    reply.type('application/x-ndjson; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`)
    return Buffer.concat(chunks).toString('utf8')
  })
}
