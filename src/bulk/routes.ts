// Bulk verification routes (README.md): submit, follow, download, cancel.
//
//   POST   /v1/batches                 202 + id; JSON {service | resource+operation, items}
//                                      or NDJSON (one item a line; service or resource and
//                                      operation in the query string), streamed, size-limited
//   GET    /v1/batches                 the caller's recent batches
//   GET    /v1/batches/{id}            progress: total, done, succeeded, failed, rate, ETA
//   GET    /v1/batches/{id}/results    NDJSON, one line per finished item, in index order:
//                                      {index, status, requestId, body | problem, evidence}
//   DELETE /v1/batches/{id}            cancel: no item starts after this
//
// Every item's `evidence` covers the item's own audit record, whose responseDigest is the
// SHA-256 of the JCS (RFC 8785) form of its `body` or `problem` — reproducible from the
// parsed line in any language. Batches belong to the submitting system; another system gets
// 404 for them. Submission, download and cancellation are audited too. One encapsulated
// plugin per resource (routes/); what they share is in routes/shared.ts.
import type { FastifyInstance } from 'fastify'
import { addNdjsonParser } from './routes/ndjson.js'
import submit from './routes/submit.js'
import follow from './routes/follow.js'
import results from './routes/results.js'
import cancel from './routes/cancel.js'
import type { BatchRouteDeps } from './routes/shared.js'

export { NDJSON, type BatchRouteDeps } from './routes/shared.js'

export async function batchRoutes(app: FastifyInstance, deps: BatchRouteDeps) {
  // Here, not in submit: every batch route parses NDJSON bodies, as it always did.
  addNdjsonParser(app)
  await app.register(submit, deps)
  await app.register(follow)
  await app.register(results)
  await app.register(cancel)
}
