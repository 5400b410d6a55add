// The seal step: every response of a route marked `config.audit` — allowed, denied or
// failed — becomes an audit record before it leaves. Allowed and denied answers carry
// their evidence; if the record cannot be made durable the answer is replaced by
// 503 AUDIT_UNAVAILABLE (no unaudited data release, DESIGN.md §2).
import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'
import type { Principal } from '../auth/principal.js'
import { Sealer } from './sealer.js'
import { digest, encodeEvidence, type AuditRecord } from '../evidence/evidence.js'
import { subjectHasher, type SubjectHasher } from './subject.js'
import { createSigner } from '../pki/suites.js'
import { Problem } from '../problems/problem.js'
import { problemBody } from '../problems/plugin.js'

export interface AuditContext {
  resource?: string
  operation?: string
  purpose?: string
  caseId?: string
  operator?: string
  subject?: string
  reason?: string
  grant?: string
  consumer?: { department: string; system: string; region: string }
  /** The caller's own Tongban-Request-Id (the request id is always the node's). */
  clientRequestId?: string
}

declare module 'fastify' {
  interface FastifyInstance {
    sealer: Sealer
    hashSubject: SubjectHasher
  }
  interface FastifyRequest {
    audit: AuditContext
    rawBody?: Buffer
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
  if (decision !== 'allowed') record.reason = a.reason ?? `HTTP_${i.status}`
  if (a.subject) record.subject = a.subject
  if (a.operator) record.operator = a.operator
  if (a.grant) record.grant = a.grant
  if (a.clientRequestId) record.clientRequestId = a.clientRequestId
  return record
}

export default fp(
  async function audit(app) {
    const { config, identity } = app
    const sealer = new Sealer({
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
    // Callback-style where nothing is awaited: an async hook costs a promise per request.
    app.addHook('onRequest', (request, _reply, done) => {
      request.audit = {}
      done()
    })

    app.addHook('onSend', (request, reply, payload, done) => {
      const route = request.routeOptions.config?.audit
      if (!route) return done(null, payload)
      const withheld = (e: unknown) => {
        request.log.error({ err: e }, 'audit record not durable; answer withheld')
        const p = new Problem(503, 'AUDIT_UNAVAILABLE', 'the audit record could not be made durable; nothing was released')
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
    })
  },
  { name: 'audit', dependencies: ['stores', 'metrics', 'node-identity'] },
)
