// The seal step: every response of a route marked `config.audit` — allowed, denied or
// failed — becomes an audit record before it leaves. Allowed and denied answers carry
// their evidence; if the record cannot be made durable the answer is replaced by
// 503 AUDIT_UNAVAILABLE (no unaudited data release, README.md).
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { readFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { Sealer } from './sealer.js'
import { ChainCutError, HighWaterStore, TailGuard } from './high-water.js'
import { encodeEvidence } from '../evidence/evidence.js'
import { buildAuditRecord, type AuditContext } from './record.js'
import { hasUnrepresentable, inputHasUnrepresentable } from './representable.js'
import { sealedStream } from './stream.js'
import { subjectHasher, type SubjectHasher } from './subject.js'
import { createSigner } from '../pki/suites.js'
import { evidenceVersionOf } from '../pki/plugin.js'
import { Problem } from '../problems/problem.js'
import { problemBody } from '../problems/plugin.js'

export { buildAuditRecord, type AuditContext, type RecordInput } from './record.js'

declare module 'fastify' {
  interface FastifyInstance {
    sealer: Sealer
    /** The node's chain's high-water mark and cut alarm (high-water.ts). */
    auditTail: TailGuard
    hashSubject: SubjectHasher
    /** Answers 503 AUDIT_UNAVAILABLE, unsealed, when a route's own seal failed: nothing is released. */
    withholdAnswer(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply
  }
  interface FastifyRequest {
    /** The request state: what the steps learn, which becomes the audit record. */
    audit: AuditContext
    rawBody?: Buffer
    /** The query engine sealed (or withheld) this answer itself: onSend leaves it alone. */
    sealedByEngine: boolean
  }
  interface FastifyContextConfig {
    audit?: { resource?: string; operation?: string; evidence?: boolean }
    /** The route seals its own audit record (the relay legs): no onSend sealing, a quiet access log. */
    sealsItself?: boolean
    /** A load balancer's health probe (/healthz, /readyz): its 200s are logged at debug, not once a second at info. */
    probe?: boolean
  }
}

const isStream = (payload: unknown): payload is Readable =>
  payload !== null && typeof payload === 'object' && typeof (payload as Readable).pipe === 'function'

const UNREPRESENTABLE = 'INPUT_UNREPRESENTABLE'

/**
 * A request that would put a string jsonb cannot hold (NUL, an unpaired surrogate) into its
 * audit record is refused, whatever the route answered: nothing is released under a record
 * that cannot say exactly what was asked. The refusal's own record carries the escaped form.
 */
function refusal(request: FastifyRequest, reply: FastifyReply, payload: unknown): string {
  if (isStream(payload)) payload.destroy()
  const p = new Problem(400, UNREPRESENTABLE, 'a value of this request (NUL or an unpaired UTF-16 surrogate) cannot be recorded in the audit log')
  request.audit.reason = p.code
  reply.code(400).type('application/problem+json').removeHeader('tongban-evidence-chain')
  return JSON.stringify(problemBody(request, p))
}

export default fp(
  async function audit(app) {
    const { config, identity } = app
    const marks = new HighWaterStore(config.audit.stateDir, app.redis, (e) => app.log.warn({ err: e }, 'audit high-water mark: the Redis copy could not be read or raised'))
    const tail = new TailGuard({
      db: app.db,
      node: config.node.id,
      chain: config.replicaId,
      store: marks,
      log: app.log,
      onCutState: app.metrics.auditChainCut,
    })
    app.decorate('auditTail', tail)
    const sealer = new Sealer({
      tail,
      db: app.db,
      node: config.node.id,
      chain: config.replicaId,
      kid: identity.signing.kid,
      signer: createSigner(config.audit.alg, identity.signing.keyPem),
      version: evidenceVersionOf(config),
      batchMaxSize: config.audit.batchMaxSize,
      batchWindowMs: config.audit.batchWindowMs,
      onBatch: app.metrics.auditBatch,
    })
    app.decorate('sealer', sealer)
    app.decorate('hashSubject', subjectHasher(Buffer.from(readFileSync(config.audit.keyFile, 'utf8').trim(), 'hex')))
    app.decorateRequest('audit', null as unknown as AuditContext)
    app.decorateRequest('sealedByEngine', false)
    app.decorate('withholdAnswer', (request: FastifyRequest, reply: FastifyReply, err: unknown) => {
      request.log.error({ err }, 'audit record not durable; answer withheld')
      request.audit.reason = 'AUDIT_UNAVAILABLE'
      // A cut chain says so (and what the operator must do), not "try again".
      const cut = err instanceof ChainCutError ? err : tail.current()
      const p = new Problem(503, 'AUDIT_UNAVAILABLE', cut ? `${cut.detail}; nothing was released` : 'the audit record could not be made durable; nothing was released')
      return reply.code(503).type('application/problem+json').send(JSON.stringify(problemBody(request, p)))
    })
    // Callback-style where nothing is awaited: an async hook costs a promise per request.
    app.addHook('onRequest', (request, _reply, done) => {
      request.audit = {}
      done()
    })

    // Path segments are never legitimately NUL or half a surrogate pair: refused before the
    // handler runs (no upstream call, no quota). Other fields are caught in onSend.
    // Every route, audited or not: what the stores are given must be representable there
    // (PostgreSQL refuses NUL in text and jsonb, and unpaired surrogates), so such input is
    // refused here, never left to fail as a 5xx in a store (a batch's items, a search filter).
    app.addHook('preHandler', (request, _reply, done) => {
      const body = request.body
      const where = hasUnrepresentable(request.params) ? 'a path segment'
        : inputHasUnrepresentable(request.query) ? 'a query parameter'
        : body !== null && typeof body === 'object' && !Buffer.isBuffer(body) && inputHasUnrepresentable(body) ? 'a body field'
        : null
      if (where) return done(new Problem(400, UNREPRESENTABLE, `${where} holds NUL or an unpaired UTF-16 surrogate, which cannot be stored or recorded`))
      done()
    })

    app.addHook('onSend', (request, reply, payload, done) => {
      const route = request.routeOptions.config?.audit
      if (!route || request.sealedByEngine) return done(null, payload)
      const withheld = (e: unknown) => {
        request.log.error({ err: e }, 'audit record not durable; answer withheld')
        // A cut chain says so (and what the operator must do), not "try again".
        const cut = e instanceof ChainCutError ? e : tail.current()
        const p = new Problem(503, 'AUDIT_UNAVAILABLE', cut ? `${cut.detail}; nothing was released` : 'the audit record could not be made durable; nothing was released')
        reply.code(503).type('application/problem+json').removeHeader('tongban-evidence')
        done(null, JSON.stringify(problemBody(request, p)))
      }
      const record = (status: number, responseBody: string, responseDigest?: string) => buildAuditRecord({
        node: config.node.id,
        requestId: request.id,
        principal: request.principal,
        audit: request.audit,
        status,
        requestBytes: request.rawBody,
        responseBody,
        responseDigest,
        defaults: route,
        version: sealer.version,
      })
      let out = payload
      let sealed
      try {
        const body = (p: unknown) => typeof p === 'string' ? p : Buffer.isBuffer(p) ? p.toString('utf8') : ''
        let r = record(reply.statusCode, body(out))
        if (r.escaped && request.audit.reason !== UNREPRESENTABLE) {
          out = refusal(request, reply, out)
          r = record(reply.statusCode, out as string)
        }
        if (isStream(out)) {
          // Sealed at its end over the bytes sent; no Tongban-Evidence (the headers are gone by then).
          const status = reply.statusCode
          return done(null, sealedStream(out, sealer.version, {
            complete: (d) => sealer.seal(record(status, '', d)).catch((e) => {
              request.log.error({ err: e }, 'audit record of a streamed answer not durable; stream cut')
              throw new Problem(503, 'AUDIT_UNAVAILABLE', 'the audit record could not be made durable')
            }),
            interrupted: (d, err) => {
              // Answered again through the error handler (and sealed there) when nothing was sent yet.
              if (err && !reply.raw.headersSent && request.raw.aborted !== true) return
              request.audit.reason = 'ANSWER_INTERRUPTED'
              sealer.seal(record(500, '', d)).catch((e) => request.log.error({ err: e }, 'audit record of an interrupted stream not durable'))
            },
          }))
        }
        sealed = sealer.seal(r)
      } catch (e) {
        return withheld(e)
      }
      // Released only once the record is durable (docs/audit.md).
      sealed.then((evidence) => {
        if (route.evidence !== false) reply.header('tongban-evidence', encodeEvidence(evidence))
        try {
          done(null, out)
        } catch (e) {
          // Writing the answer threw (a second answer to one request would): a bug to log,
          // not a reason to take the node down.
          request.log.error({ err: e }, 'answer could not be written')
        }
      }, withheld)
    })

    // Graceful shutdown: onClose runs after in-flight requests are done and before the
    // stores (registered earlier) close, so the last batch is sealed.
    app.addHook('onClose', async () => {
      await sealer.close()
      await marks.close()
    })
    // A cut found at start is an alarm at once, before any traffic (PostgreSQL down: later).
    app.addHook('onReady', async () => {
      await tail.check().catch((e) => {
        if (!(e instanceof ChainCutError)) app.log.warn({ err: e }, 'audit chain head not checked at start')
      })
    })
  },
  { name: 'audit', dependencies: ['stores', 'metrics', 'node-identity'] },
)
