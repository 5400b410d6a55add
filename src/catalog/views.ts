// How a catalogue resource is shown: a consumer sees what it needs to call the resource;
// the upstream binding (addresses, retries, the audited subject field) stays inside the
// node, except for the catalogue admin, who maintains it.
import type { FastifyRequest } from 'fastify'
import type { CatalogResource } from './repository.js'

export const publicView = (r: CatalogResource) => {
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

export const viewFor = (request: FastifyRequest, r: CatalogResource) =>
  request.principal?.roles.includes('catalog-admin') ? r : publicView(r)

/** A stored resource as the JSON the catalogue routes answer (entry, version, status). */
export const entrySchema = {
  type: 'object',
  description: 'A catalogue entry (schemas/catalog-entry.schema.json) with its stored version and status; the upstream binding is shown to the catalogue admin only',
  additionalProperties: true,
  properties: {
    code: { type: 'string', examples: ['101001/00001'] },
    version: { type: 'integer' },
    status: { type: 'string', enum: ['active', 'retired'] },
    name: { type: 'string' },
    heldBy: {
      type: 'object',
      description: 'the node holding the resource (this node for its own); an application or a query for it travels there',
      properties: { node: { type: 'string' }, region: { type: 'string' }, tier: { type: 'string', enum: ['national', 'province', 'city', 'county'] } },
    },
  },
}
