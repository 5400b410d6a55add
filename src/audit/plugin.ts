// The seal step: every response of a route marked `config.audit` — allowed, denied or
// failed — becomes an audit record before it leaves. Allowed and denied answers carry
// their evidence; if the record cannot be made durable the answer is replaced by
// 503 AUDIT_UNAVAILABLE (no unaudited data release, DESIGN.md §2).
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { readFileSync } from 'node:fs'
import type { Principal } from '../auth/principal.js'
import { Sealer } from './sealer.js'
import { ChainCutError, HighWaterStore, TailGuard } from './high-water.js'
import { digest, encodeEvidence, type AuditRecord } from '../evidence/evidence.js'
import { subjectHasher, type SubjectHasher } from './subject.js'
import { createSigner } from '../pki/suites.js'
import { Problem, type ProblemCode } from '../problems/problem.js'
import { statusFallback } from '../problems/codes.js'
import { problemBody } from '../problems/plugin.js'

export interface AuditContext {
  resource?: string
  operation?: string
  purpose?: string
  caseId?: string
  operator?: string
  subject?: string
  /** Why the answer was not an allowed one: its problem code. */
  reason?: ProblemCode
  grant?: string
  consumer?: { department: string; system: string; region: string }
}

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
  }
}

const EMPTY_DIGEST = digest('')

const decisionOf = (status: number) => (status < 400 ? 'allowed' : status < 500 ? 'denied' : 'failed')

export interface RecordInput {
  node: string
  requestId: string
  principal: Principal | null
  audit: AuditContext
  status: number
  requestBytes?: Buffer | string
  responseBody: string
  /** Route defaults for resource and operation. */
  defaults?: { resource?: string; operation?: string }
}

/** The audit record of one answer: what the onSend hook seals, and what batch jobs seal. */
export function buildAuditRecord(i: RecordInput): AuditRecord {
  const a = i.audit
  const p = i.principal
  const decision = decisionOf(i.status)
  const record: AuditRecord = {
    requestId: i.requestId,
    time: new Date().toISOString(),
    node: i.node,
    consumer: p ? { department: p.department, system: p.system, region: p.region } : a.consumer ?? null,
    resource: a.resource ?? i.defaults?.resource ?? null,
    operation: a.operation ?? i.defaults?.operation ?? null,
    purpose: a.purpose ?? null,
    caseId: a.caseId ?? null,
    decision,
    requestDigest: i.requestBytes ? digest(i.requestBytes) : EMPTY_DIGEST,
    responseDigest: digest(i.responseBody),
  } as AuditRecord
  if (decision !== 'allowed') record.reason = a.reason ?? statusFallback(i.status)
  if (a.subject) record.subject = a.subject
  if (a.operator) record.operator = a.operator
  if (a.grant) record.grant = a.grant
  return record
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
      kid: identity.kid,
      signer: createSigner(config.audit.alg, identity.keyPem),
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
      const p = new Problem(503, 'AUDIT_UNAVAILABLE', 'the audit record could not be made durable; nothing was released')
      return reply.code(503).type('application/problem+json').send(JSON.stringify(problemBody(request, p)))
    })
    // Callback-style where nothing is awaited: an async hook costs a promise per request.
    app.addHook('onRequest', (request, _reply, done) => {
      request.audit = {}
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
      const body = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : ''
      let sealed
      try {
        sealed = sealer.seal(buildAuditRecord({
          node: config.node.id,
          requestId: request.id,
          principal: request.principal,
          audit: request.audit,
          status: reply.statusCode,
          requestBytes: request.rawBody,
          responseBody: body,
          defaults: route,
        }))
      } catch (e) {
        return withheld(e)
      }
      // Released only once the record is durable (DESIGN §4).
      sealed.then((evidence) => {
        if (route.evidence !== false) reply.header('tongban-evidence', encodeEvidence(evidence))
        try {
          done(null, payload)
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
