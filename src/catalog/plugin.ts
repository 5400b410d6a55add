// The resolve step's data (the catalogue, in memory) and the routes to browse it.
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { Problem } from '../problem.js'
import { problemResponses } from '../problem-schema.js'
import { CatalogRepository, type CatalogResource } from './repository.js'

declare module 'fastify' {
  interface FastifyInstance {
    catalog: CatalogRepository
  }
}

// What a consumer needs to know to call a resource; the upstream binding stays inside.
const publicView = (r: CatalogResource) => {
  const { service, ...rest } = r
  return {
    ...rest,
    ...(service
      ? {
          service: {
            verifyService: service.verifyService,
            operations: Object.fromEntries(
              Object.entries(service.operations).map(([name, op]) => [name, { requestSchema: op.requestSchema, responseSchema: op.responseSchema }]),
            ),
          },
        }
      : {}),
  }
}

const entrySchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    code: { type: 'string', examples: ['101001/00001'] },
    version: { type: 'integer' },
    status: { type: 'string', enum: ['active', 'retired'] },
    name: { type: 'string' },
  },
}

export default fp(
  async function catalog(app) {
    const repo = new CatalogRepository(app.db)
    await repo.load()
    app.decorate('catalog', repo)

    const authenticated = [app.authenticate]
    app.get('/v1/catalog/resources', {
      onRequest: authenticated,
      schema: {
        tags: ['catalog'],
        summary: 'Browse the catalogue (newest version of every resource)',
        security: [{ bearer: [] }],
        response: { 200: { type: 'object', properties: { resources: { type: 'array', items: entrySchema } } }, ...problemResponses(401) },
      },
    }, async () => ({ resources: repo.list().map(publicView) }))

    type Params = { code?: string; category?: string; seq?: string }
    const getOne = async (request: FastifyRequest<{ Params: Params }>) => {
      const p = request.params
      const r = repo.get(p.code ?? `${p.category}/${p.seq}`)
      if (!r) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
      return publicView(r)
    }
    const one = {
      onRequest: authenticated,
      schema: {
        tags: ['catalog'],
        summary: 'One catalogue resource (code percent-encoded, or as two path segments)',
        security: [{ bearer: [] }],
        response: { 200: entrySchema, ...problemResponses(401, 404) },
      },
    }
    app.get<{ Params: Params }>('/v1/catalog/resources/:code', one, getOne)
    app.get<{ Params: Params }>('/v1/catalog/resources/:category/:seq', one, getOne)
  },
  { name: 'catalog', dependencies: ['stores', 'auth'] },
)
