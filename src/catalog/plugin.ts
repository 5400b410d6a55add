// The resolve step's data (the catalogue, in memory, reloaded on every replica when it
// changes), the routes to browse it and, in admin-routes.ts, to administer it.
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { CatalogRepository } from './repository.js'
import { entrySchema, viewFor } from './views.js'
import { CATALOG_TOPIC, catalogAdminRoutes } from './admin-routes.js'
import { departmentNames, type DepartmentNames } from './departments.js'

declare module 'fastify' {
  interface FastifyInstance {
    catalog: CatalogRepository
    /** Department names for responses (departments.ts). */
    departments: DepartmentNames
  }
}

export default fp(
  async function catalog(app) {
    const repo = new CatalogRepository(app.db)
    await repo.load()
    app.decorate('catalog', repo)
    app.decorate('departments', departmentNames(app.db, repo))
    // A write on any replica is published on the bus; bursts of changes coalesce into one
    // reload at a time (plus one queued), and a bus reconnect reloads too.
    app.bus.subscribe(CATALOG_TOPIC, () => {
      repo.reload().catch((err) => app.log.error({ err }, 'catalogue reload failed'))
    })
    // Safety net for a missed message (a publish lost while Redis was away).
    const refresh = setInterval(() => repo.reload().catch(() => {}), 60_000)
    refresh.unref()
    app.addHook('onClose', async () => clearInterval(refresh))

    const { node } = app.config
    const here = { node: node.id, region: node.region, tier: node.tier }
    const authenticated = [app.authenticate]
    app.get('/v1/catalog/resources', {
      onRequest: authenticated,
      schema: {
        tags: ['catalog'],
        summary: 'Browse the catalogue: the newest version of every own resource, and the resources other nodes hold (`heldBy`: the node, its region and tier)',
        security: [{ bearer: [] }],
        response: { 200: { type: 'object', properties: { resources: { type: 'array', items: entrySchema } } }, ...problemResponses(401) },
      },
    }, async (request) => ({
      resources: [
        ...repo.list().map((r) => ({ ...viewFor(request, r), heldBy: here })),
        // Held by other nodes (above, beside, below), each with its holder.
        ...(repo.elsewhere?.list() ?? []).filter((e) => !repo.get(e.resource.code)).map((e) => ({ ...e.resource, heldBy: e.heldBy })),
      ],
    }))

    type Params = { code?: string; category?: string; seq?: string }
    const getOne = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
      const p = request.params
      const code = p.code ?? `${p.category}/${p.seq}`
      const r = repo.get(code)
      if (!r) {
        const e = repo.elsewhere?.get(code, request.principal?.region)
        if (!e) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
        return { ...e.resource, heldBy: e.heldBy }
      }
      reply.header('etag', `"${r.version}"`)
      return { ...viewFor(request, r), heldBy: here }
    }
    const one = {
      onRequest: authenticated,
      schema: {
        tags: ['catalog'],
        summary: 'One catalogue resource, own or held by another node (`heldBy`; code percent-encoded, or as two path segments)',
        security: [{ bearer: [] }],
        response: { 200: entrySchema, ...problemResponses(401, 404) },
      },
    }
    app.get<{ Params: Params }>('/v1/catalog/resources/:code', one, getOne)
    app.get<{ Params: Params }>('/v1/catalog/resources/:category/:seq', one, getOne)

    await catalogAdminRoutes(app, repo)
  },
  { name: 'catalog', dependencies: ['stores', 'audit', 'auth'] },
)
