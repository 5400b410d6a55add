// The query routes: `POST /v1/verify/{service}` (one route per service in the catalogue, its
// schemas from schemas/) and `POST /v1/resources/{code}/{operation}` for any resource.
// Each builds one Query from the request and runs the pipeline (query.ts), which seals the
// answer itself. Refusals before the engine runs (authentication, roles) are sealed by the
// audit plugin's onSend, as for every audited route.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { problemResponses } from '../problems/schema.js'
import { encodeEvidence, type AuditRecord } from '../evidence/evidence.js'
import { contextHeadersSchema, contextOf } from './context.js'
import { QueryEngine, stripId, type Query, type QueryTarget, type SealedAnswer } from './query.js'
import { loadSchemaFile } from '../catalog/files.js'
import { requestValidators } from '../validation/ajv.js'

const QUERY_ERRORS = problemResponses(400, 401, 403, 404, 410, 413, 415, 429, 502, 503, 504)
export const EVIDENCE_CHAIN_HEADER = 'tongban-evidence-chain'

/**
 * A header a sealed answer carries because of what its record names (Tongban-Data-Notice:
 * src/disputes/notices.ts). Runs on every answer: an in-memory lookup, never a store call.
 */
export type AnswerNote = (record: AuditRecord) => readonly [name: string, value: string] | null

declare module 'fastify' {
  interface FastifyInstance {
    exchange: QueryEngine
    /** Added to by later plugins (disputes); read per answer. */
    answerNotes: AnswerNote[]
  }
}

/** The Query of an HTTP request: its principal, context headers, body and exact bytes. */
export function queryOf(request: FastifyRequest, target: QueryTarget, serialize?: (a: unknown) => string, routeBodySchema?: string): Query {
  return {
    requestId: request.id,
    principal: request.principal!,
    target,
    context: contextOf(request),
    body: request.body,
    bodyBytes: request.rawBody,
    routeValidation: request.validationError ?? null,
    routeBodySchema,
    state: request.audit,
    serialize,
  }
}

/**
 * The headers outside the evidence a sealed answer carries: what the next hops passed on
 * (the owner's notice of a relayed answer), then this node's notes on its own record.
 */
export function answerHeaders(a: SealedAnswer, notes: readonly AnswerNote[]): Array<readonly [string, string]> {
  const out = a.passOn ? [...a.passOn] : []
  for (const note of notes) {
    const h = note(a.evidence.record)
    if (h) out.push(h)
  }
  return out
}

/** Sends a sealed answer with its evidence (and the next hops' evidence of a relayed one). */
export function sendSealed(reply: FastifyReply, a: SealedAnswer, notes: readonly AnswerNote[]): FastifyReply {
  reply.header('tongban-evidence', encodeEvidence(a.evidence))
  for (const [name, value] of answerHeaders(a, notes)) reply.header(name, value)
  if (a.chain.length) reply.header(EVIDENCE_CHAIN_HEADER, a.chain.join(', '))
  if (a.retryAfter !== undefined) reply.header('retry-after', String(a.retryAfter))
  if (a.status === 401) reply.header('www-authenticate', 'Bearer')
  return reply.code(a.status).type(a.contentType).send(a.body)
}

// The resource routes' body check: an object; its operation's schema is the engine's to apply.
const AN_OBJECT = { type: 'object' }

export default fp(
  async function exchange(app: FastifyInstance) {
    const { config, catalog, purposes } = app
    const engine = new QueryEngine({
      config,
      catalog,
      purposes,
      hashSubject: app.hashSubject,
      authorize: app.policy.authorize,
      sealer: app.sealer,
      router: app.tiers.router,
      log: app.log,
      onUpstreamCircuit: (upstream, state) => app.metrics.upstreamCircuit(upstream, state),
    })
    app.decorate('exchange', engine)
    app.decorate('answerNotes', [] as AnswerNote[])
    app.addHook('onClose', () => engine.close())

    const consumerOnly = [app.authenticate, app.requireRole('consumer')]

    // The engine seals what it answers; if the record cannot be made durable, nothing is released.
    const runQuery = async (request: FastifyRequest, reply: FastifyReply, target: QueryTarget, serialize?: (a: unknown) => string, routeBodySchema?: string) => {
      request.sealedByEngine = true
      const q = queryOf(request, target, serialize, routeBodySchema)
      let sealed: SealedAnswer
      try {
        sealed = await engine.run(q)
      } catch (e) {
        return app.withholdAnswer(request, reply, e)
      }
      return sendSealed(reply, sealed, app.answerNotes)
    }

    // POST /v1/verify/{service}: the resource is chosen for the caller's region.
    for (const service of catalog.verifyServices()) {
      const sample = catalog.list().find((r) => r.service?.verifyService === service)!
      const op = sample.service!.operations.verify
      app.post(`/v1/verify/${service}`, {
        onRequest: consumerOnly,
        // The engine's context step runs before the body check is reported: a refused body
        // is audited with its purpose and case.
        attachValidation: true,
        config: { audit: { operation: 'verify' } },
        schema: {
          tags: ['verify'],
          summary: `Verify ${service} (${sample.name})`,
          security: [{ bearer: [] }],
          headers: contextHeadersSchema,
          body: stripId(loadSchemaFile(config.files.schemasDir, op.requestSchema)),
          response: { 200: stripId(loadSchemaFile(config.files.schemasDir, op.responseSchema)), ...QUERY_ERRORS },
        },
      }, (request, reply) => runQuery(request, reply, { kind: 'verify', service }, (a) => reply.code(200).serialize(a) as string, op.requestSchema))
    }

    // A service this node does not list may still be held at another node (the route step).
    app.post<{ Params: { service: string } }>('/v1/verify/:service', {
      onRequest: consumerOnly,
      attachValidation: true,
      config: { audit: { operation: 'verify' } },
      schema: { hide: true },
    }, (request, reply) => runQuery(request, reply, { kind: 'verify', service: request.params.service }))

    // POST /v1/resources/{code}/{operation}: the code is `101001/00001`, sent either
    // percent-encoded in one segment or as two segments.
    type Params = { code?: string; category?: string; seq?: string; operation: string }
    const resourceHandler = (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
      const p = request.params
      return runQuery(request, reply, { kind: 'resources', code: p.code ?? `${p.category}/${p.seq}`, operation: p.operation })
    }
    // The body is one of the operations' request schemas (the catalogue's, as at start), so
    // OpenAPI describes it; which one applies is known only once the engine resolved the
    // resource, so the route checks that it is an object and the engine checks the rest.
    const operations = catalog.list().flatMap((r) => Object.entries(r.service?.operations ?? {}).map(([op, b]) => ({ r, op, b })))
    const bodyOf = (rel: string) => stripId(loadSchemaFile(config.files.schemasDir, rel))
    const resourceRoute = {
      onRequest: consumerOnly,
      attachValidation: true,
      config: { audit: {} },
      validatorCompiler: ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
        requestValidators.compile(httpPart === 'body' ? AN_OBJECT : schema),
      schema: {
        tags: ['resources'],
        summary: 'Query any catalogue resource (body and answer as its catalogue entry defines)',
        description: 'The body is the request schema of the operation named in the URL (GET /v1/catalog/resources/{code}: service.operations); the answer its response schema, less the items the caller may not receive.',
        security: [{ bearer: [] }],
        headers: contextHeadersSchema,
        body: {
          type: 'object',
          anyOf: operations.map(({ r, op, b }) => {
            const body = bodyOf(b.requestSchema)
            return { ...body, title: `${r.code} ${op}: ${typeof body.title === 'string' ? body.title : r.name}` }
          }),
        },
        response: { 200: { type: 'object', additionalProperties: true }, ...QUERY_ERRORS },
      },
    }
    app.post<{ Params: Params }>('/v1/resources/:code/:operation', resourceRoute, resourceHandler)
    app.post<{ Params: Params }>('/v1/resources/:category/:seq/:operation', resourceRoute, resourceHandler)

    app.get('/v1/purposes', {
      schema: {
        tags: ['node'],
        summary: 'The purpose codes this node accepts in Tongban-Purpose',
        response: {
          200: {
            type: 'object',
            properties: {
              purposes: {
                type: 'array',
                items: { type: 'object', properties: { code: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' } } },
              },
            },
          },
        },
      },
    }, async () => ({ purposes: [...purposes.values()] }))
  },
  { name: 'exchange', dependencies: ['auth', 'audit', 'catalog', 'policy', 'tiers'] },
)
