// Read-only routes, on every node: where this node stands in the tree, and the catalogue as
// it sees it (its own resources and those published by the nodes below).
import type { FastifyInstance } from 'fastify'
import { problemResponses } from '../../problems/schema.js'
import { publicView } from '../../catalog/views.js'
import type { RemoteEntry } from '../remote-catalog.js'

const sec = [{ bearer: [] }]

type CatalogQuery = { status?: 'active' | 'all'; node?: string }

const catalogSchema = {
  tags: ['tiers'],
  summary: 'The catalogue as this node sees it: its own resources and those published by the nodes below it, each with its owning node',
  security: sec,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: ['active', 'all'], default: 'active', description: 'all: retired resources too' },
      node: { type: 'string', pattern: '^[1-9][0-9]{5}$', description: 'only the resources of this owning node' },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        node: { type: 'string' },
        resources: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: true,
            properties: { node: { type: 'string' }, via: { type: ['string', 'null'] }, code: { type: 'string' }, version: { type: 'integer' }, status: { type: 'string' } },
          },
        },
      },
    },
    ...problemResponses(400, 401),
  },
}

/** A resource published below; of each operation only its schemas are shown. */
function belowView(e: RemoteEntry) {
  const { service, ...rest } = e.entry
  return {
    ...rest,
    ...(service ? { service: { verifyService: service.verifyService, operations: Object.fromEntries(Object.entries(service.operations).map(([k, o]) => [k, { requestSchema: o.requestSchema, responseSchema: o.responseSchema }])) } } : {}),
    node: e.node,
    via: e.via,
    receivedAt: e.receivedAt,
  }
}

export function registerReadRoutes(app: FastifyInstance): void {
  const { topology, remote } = app.tiers
  app.get('/v1/tiers/topology', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['tiers'],
      summary: 'This node in the tier tree: parent, children, nodes known below it, the state of each next hop',
      security: sec,
      response: { 200: { type: 'object', additionalProperties: true }, ...problemResponses(401) },
    },
  }, async () => ({
    self: topology.self,
    parent: topology.parent,
    children: topology.children,
    nodePort: app.tiers.nodePort(),
    below: await remote.nodes(),
    hops: app.tiers.link?.client.allGuards().map((g) => g.snapshot()) ?? [],
  }))

  app.get<{ Querystring: CatalogQuery }>('/v1/tiers/catalog/resources', { onRequest: [app.authenticate], schema: catalogSchema }, async (request) => {
    const all = request.query.status === 'all'
    const own = app.catalog.list().map((r) => ({ ...publicView(r), node: topology.self.id, via: null }))
    const below = remote.list().map(belowView)
    const resources = [...own, ...below].filter((r) => (all || r.status === 'active') && (!request.query.node || r.node === request.query.node))
    return { node: topology.self.id, resources }
  })
}
