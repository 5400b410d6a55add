// The query routes: `POST /v1/verify/{service}` (one route per service in the catalogue, its
// schemas from schemas/) and `POST /v1/resources/{code}/{operation}` for any resource.
// Each runs the pipeline of DESIGN.md §3; sealing happens in the audit plugin's onSend.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { contextHeadersSchema, readContext } from './context.js'
import { QueryEngine, stripId } from './query.js'
import { loadSchemaFile } from '../catalog/files.js'
import type { CatalogResource } from '../catalog/repository.js'

const QUERY_ERRORS = problemResponses(400, 401, 403, 404, 410, 413, 415, 429, 502, 503, 504)

declare module 'fastify' {
  interface FastifyInstance {
    exchange: QueryEngine
  }
}

export default fp(
  async function exchange(app: FastifyInstance) {
    const { config, catalog, purposes } = app
    const engine = new QueryEngine({ config, hashSubject: app.hashSubject, authorize: app.policy.authorize })
    app.decorate('exchange', engine)
    app.addHook('onClose', () => engine.close())

    const consumerOnly = [app.authenticate, app.requireRole('consumer')]

    // Context first, then the subject's keyed hash: both go into the record even when the
    // body is refused by validation.
    const preValidation = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
      try {
        readContext(request, purposes)
      } catch (e) {
        return done(e as Error)
      }
      done()
    }

    const runQuery = (request: FastifyRequest, resource: CatalogResource, operation: string, body: unknown) =>
      engine.run({ requestId: request.id, principal: request.principal!, audit: request.audit }, resource, operation, body)

    // POST /v1/verify/{service}: the resource is chosen for the caller's region.
    for (const service of catalog.verifyServices()) {
      const sample = catalog.list().find((r) => r.service?.verifyService === service)!
      const op = sample.service!.operations.verify
      app.post(`/v1/verify/${service}`, {
        onRequest: consumerOnly,
        preValidation,
        config: { audit: { operation: 'verify' } },
        schema: {
          tags: ['verify'],
          summary: `Verify ${service} (${sample.name})`,
          security: [{ bearer: [] }],
          headers: contextHeadersSchema,
          body: stripId(loadSchemaFile(config.files.schemasDir, op.requestSchema)),
          response: { 200: stripId(loadSchemaFile(config.files.schemasDir, op.responseSchema)), ...QUERY_ERRORS },
        },
      }, async (request) => {
        const resource = catalog.forVerifyService(service, request.principal!.region)
        if (!resource) throw new Problem(404, 'RESOURCE_NOT_FOUND', `no resource answers verify/${service} for this region`)
        return runQuery(request, resource, 'verify', request.body)
      })
    }

    app.post<{ Params: { service: string } }>('/v1/verify/:service', {
      onRequest: consumerOnly,
      preValidation,
      config: { audit: { operation: 'verify' } },
      schema: { hide: true },
    }, async (request) => {
      throw new Problem(404, 'SERVICE_UNKNOWN', `no verification service ${request.params.service.slice(0, 64)}`)
    })

    // POST /v1/resources/{code}/{operation}: the code is `101001/00001`, sent either
    // percent-encoded in one segment or as two segments.
    type Params = { code?: string; category?: string; seq?: string; operation: string }
    const resourceHandler = async (request: FastifyRequest<{ Params: Params }>) => {
      const p = request.params
      const code = p.code ?? `${p.category}/${p.seq}`
      const resource = catalog.get(code)
      if (!resource) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
      engine.validateRequest(resource, p.operation, request.body)
      return runQuery(request, resource, p.operation, request.body)
    }
    const resourceRoute = {
      onRequest: consumerOnly,
      preValidation,
      config: { audit: {} },
      schema: {
        tags: ['resources'],
        summary: 'Query any catalogue resource (body and answer as its catalogue entry defines)',
        security: [{ bearer: [] }],
        headers: contextHeadersSchema,
        body: { type: 'object' },
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
  { name: 'exchange', dependencies: ['auth', 'audit', 'catalog', 'policy'] },
)
