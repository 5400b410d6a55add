// An offline-verifiable bundle over HTTP, bounded so the audit record of the call can bind
// the exact bytes; larger ranges go through `tongban audit export`.
import type { FastifyInstance } from 'fastify'
import { PassThrough } from 'node:stream'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import { exportBundle, ExportTooLargeError } from '../bundle.js'
import { csvStream, countOver, TABLE_EXPORT_MAX_ROWS, xlsxStream } from '../table-export.js'
import { auditorRoute, filterProperties, includeOwnProperty, requireOrderedRange, resolver, searchFiltersOf } from './shared.js'
import type { Names } from './names.js'

const TABLE_TYPES = {
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
} as const

export const HTTP_EXPORT_MAX_RECORDS = 100_000
// includeOwn and order carry defaults, so they are always present.
const BUNDLE_KEYS = new Set(['from', 'to', 'chain', 'format', 'order', 'includeOwn'])

export default async function exportRoute(app: FastifyInstance, opts: { names: Names }) {
  const { config, identity } = app
  const resolve = resolver(app)

  app.get('/v1/audit/export', auditorRoute(app, 'audit.export', {
    summary: 'Export an offline-verifiable bundle (auditor)',
    description: `The batches whose checkpoint time is in [from, to), whole, with their checkpoints, the node certificates and the CA chain, as NDJSON (see docs/audit.md). Verify with \`tongban audit verify <file> --ca ca.crt.pem\`. Up to ${HTTP_EXPORT_MAX_RECORDS} records here (the audit record of this call then binds the exact bytes); larger ranges with \`tongban audit export\`.\n\n\`format=csv\` or \`format=xlsx\`: instead, the records of a search (the filters of GET /v1/audit/records, in [from, to)) as a table with Chinese column headers first, streamed, at most ${TABLE_EXPORT_MAX_ROWS} rows (413 AUDIT_EXPORT_TOO_LARGE otherwise; the subject is not a column). The call is audited as every auditor call.`,
    querystring: {
      type: 'object',
      additionalProperties: false,
      required: ['from', 'to'],
      properties: {
        ...filterProperties, ...includeOwnProperty,
        format: { type: 'string', enum: ['bundle', 'csv', 'xlsx'], default: 'bundle', description: 'bundle: the verifiable NDJSON bundle (chain is its only other filter); csv, xlsx: the search results as a table' },
        order: { type: 'string', enum: ['desc', 'asc'], default: 'desc' },
      },
    },
    response: { ...problemResponses(400, 401, 403, 413, 503) },
  }), async (request, reply) => {
    const q = request.query as { from: string; to: string; chain?: string; format: 'bundle' | 'csv' | 'xlsx'; order: 'asc' | 'desc' }
    requireOrderedRange(q.from, q.to)
    if (q.format !== 'bundle') {
      const f = searchFiltersOf(q, request.principal!.system)
      if (await countOver(app.readDb, resolve, f)) throw new Problem(413, 'AUDIT_EXPORT_TOO_LARGE', `more than ${TABLE_EXPORT_MAX_ROWS} records; narrow the search`)
      const names = await opts.names()
      const name = `audit-${config.node.id}-${q.from.slice(0, 10)}-${q.to.slice(0, 10)}.${q.format}`
      reply.type(TABLE_TYPES[q.format]).header('content-disposition', `attachment; filename="${name}"`)
      return q.format === 'csv' ? csvStream(app.readDb, resolve, f, q.order, names) : xlsxStream(app.readDb, resolve, f, q.order, names)
    }
    // A bundle holds whole batches: a search filter would be silently ignored, so it is refused.
    const extra = Object.keys(q).find((k) => !BUNDLE_KEYS.has(k))
    if (extra) throw new Problem(400, 'INPUT_INVALID', `${extra} filters a table export (format=csv|xlsx); a bundle takes from, to and chain only`)
    const sink = new PassThrough()
    const chunks: Buffer[] = []
    sink.on('data', (d: Buffer) => chunks.push(d))
    try {
      await exportBundle(app.readDb, sink, {
        node: config.node.id, from: new Date(q.from), to: new Date(q.to), chain: q.chain,
        certificates: [identity.signing.certPem], caChain: [identity.signing.caPem], maxRecords: HTTP_EXPORT_MAX_RECORDS, compress: false,
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
