// Catalogue administration (README.md): register, update and retire resources, and
// read their version history. Writes need the catalog-admin role, are validated against
// schemas/catalog-entry.schema.json (every problem reported, with its JSON pointer), keep
// every previous version readable, and are audited: each response — allowed, denied or
// failed — is sealed by the audit plugin with the admin as consumer and the code as resource.
// After a write commits, every replica reloads its in-memory catalogue (bus topic `catalog`).
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import { requestValidators } from '../validation/ajv.js'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { ENTRY_SCHEMA_FILE, loadSchemaFile, validateCatalogEntry } from './files.js'
import type { CatalogRepository, CatalogResource, VersionPrecondition } from './repository.js'
import type { CatalogEntry } from './types.js'
import { entrySchema, viewFor } from './views.js'

export const CATALOG_TOPIC = 'catalog'

const CODE = /^[0-9]{6}\/[0-9]{5}$/

type Params = { code?: string; category?: string; seq?: string }
type VersionParams = Params & { n: string }

const codeOf = (p: Params): string => p.code ?? `${p.category}/${p.seq}`

// `If-Match: "3"` (the version last read, as its ETag), a list of them, or `*`.
const IF_MATCH = '^\\s*(\\*|(W/)?"[^"]*"(\\s*,\\s*(W/)?"[^"]*")*)\\s*$'
const ifMatchHeaders = {
  type: 'object',
  properties: {
    'if-match': {
      type: 'string',
      pattern: IF_MATCH,
      description: 'Required. Optimistic concurrency: the version last read, as its ETag ("3"), or * to overwrite any version. Without it the write is refused with 428 CATALOG_PRECONDITION_REQUIRED; if the resource has moved on, with 412 CATALOG_VERSION_CONFLICT.',
    },
  },
}

/** Strong comparison (RFC 9110 §13.1.1): a weak tag never matches. */
export function parseIfMatch(header: string | undefined): VersionPrecondition {
  if (header === undefined) return undefined
  if (header.trim() === '*') return { any: true }
  const versions = header
    .split(',')
    .map((t) => /^"([1-9][0-9]{0,8})"$/.exec(t.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
  return { versions }
}

// A write without If-Match would silently overwrite a change the writer never saw
// (lost update), so one is required (RFC 6585 §3); `*` states the overwrite on purpose.
function requiredIfMatch(header: string | undefined): NonNullable<VersionPrecondition> {
  const expected = parseIfMatch(header)
  if (expected === undefined) {
    throw new Problem(428, 'CATALOG_PRECONDITION_REQUIRED', 'send If-Match with the ETag of the version you read (or * to overwrite any version)', { title: 'Precondition Required' })
  }
  return expected
}

const etag = (r: CatalogResource) => `"${r.version}"`
const location = (code: string) => `/v1/catalog/resources/${encodeURIComponent(code)}`

const versionInfoSchema = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    status: { type: 'string', enum: ['active', 'retired'] },
    createdAt: { type: 'string', format: 'date-time' },
    createdBy: { type: 'string', description: 'the system (client id) that made this version' },
    contentHash: { type: 'string', description: 'SHA-256 of the JCS of the entry, version aside' },
  },
}

export async function catalogAdminRoutes(app: FastifyInstance, repo: CatalogRepository): Promise<void> {
  const { schemasDir } = app.config.files

  // The entry schema documents the request bodies in OpenAPI; the bodies themselves are
  // checked by validateCatalogEntry, which reports every problem (the route validator would
  // stop at the first), plus the rules a schema cannot express.
  const entryFileSchema = structuredClone(loadSchemaFile(schemasDir, ENTRY_SCHEMA_FILE))
  const entryRef = { $ref: `${entryFileSchema.$id}#` }
  app.addSchema(entryFileSchema)
  const validatorCompiler = ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    httpPart === 'body' ? () => true : requestValidators.compile(schema)

  const admin = [
    // The code goes into the audit record even when the caller is refused.
    async (request: FastifyRequest<{ Params: Params }>) => {
      const code = codeOf(request.params)
      if (CODE.test(code)) request.audit.resource = code
    },
    app.authenticate,
    app.requireRole('catalog-admin'),
  ]

  const checkEntry = (body: unknown): CatalogEntry => {
    const errors = validateCatalogEntry(body, schemasDir)
    if (errors.length) {
      throw new Problem(400, 'CATALOG_ENTRY_INVALID', `the entry does not match the catalogue schema (${errors.length} problem${errors.length > 1 ? 's' : ''})`, {
        errors: errors.map((e) => ({ pointer: e.path || '/', detail: e.reason })),
      })
    }
    return body as CatalogEntry
  }

  // Read your own write on this replica, then tell every replica (this one included).
  const afterWrite = async (request: FastifyRequest) => {
    await repo.reload().catch((err) => request.log.error({ err }, 'catalogue reload after a write failed'))
    await app.bus.publish(CATALOG_TOPIC).catch((err) => request.log.error({ err }, 'catalogue change not published; other replicas catch up on their periodic reload'))
  }

  const actor = (request: FastifyRequest) => request.principal!.system

  const writeErrors = (...statuses: number[]) => problemResponses(401, 403, ...statuses, 413, 415, 503)

  app.post('/v1/catalog/resources', {
    onRequest: [app.authenticate, app.requireRole('catalog-admin')],
    config: { audit: { operation: 'catalog.create' } },
    validatorCompiler,
    schema: {
      tags: ['catalog'],
      summary: 'Register a catalogue resource (catalogue admin); stored as version 1',
      description: 'The body is a catalogue entry (catalog-entry.schema.json). Its `version`, if any, is ignored: the gateway numbers versions. Every problem is reported at once in `errors` (JSON pointers). A code is never reused, not even after the resource is retired.',
      security: [{ bearer: [] }],
      body: entryRef,
      response: { 201: entrySchema, ...writeErrors(400, 409) },
    } as FastifySchema,
  }, async (request, reply) => {
    const body = request.body as { code?: unknown } | null
    if (typeof body?.code === 'string' && CODE.test(body.code)) request.audit.resource = body.code
    const entry = checkEntry(body)
    const resource = await repo.create(entry, actor(request))
    await afterWrite(request)
    reply.code(201).header('location', location(resource.code)).header('etag', etag(resource))
    return resource
  })

  const update = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const code = codeOf(request.params)
    const body = request.body as { code?: unknown } | null
    if (body && typeof body === 'object' && !Array.isArray(body) && typeof body.code === 'string' && body.code !== code) {
      throw new Problem(400, 'CATALOG_CODE_MISMATCH', `the entry's code ${JSON.stringify(body.code.slice(0, 32))} is not the code in the path (${code.slice(0, 32)}); a code cannot be changed`, {
        errors: [{ pointer: '/code', detail: `must be ${code.slice(0, 32)}` }],
      })
    }
    const entry = checkEntry(body)
    const expected = requiredIfMatch(request.headers['if-match'])
    const { resource, changed } = await repo.update(entry, actor(request), expected)
    if (changed) await afterWrite(request)
    reply.header('etag', etag(resource))
    return resource
  }
  const updateRoute = {
    onRequest: admin,
    config: { audit: { operation: 'catalog.update' } },
    validatorCompiler,
    schema: {
      tags: ['catalog'],
      summary: 'Update a catalogue resource (catalogue admin): the full new entry becomes the next version',
      description: 'The code is percent-encoded in one segment or given as two segments, and must equal the body\'s code. The previous versions stay readable under /versions. An entry equal to the current version is left alone (no new version). A retired resource is not updated.',
      security: [{ bearer: [] }],
      headers: ifMatchHeaders,
      body: entryRef,
      response: { 200: entrySchema, ...writeErrors(400, 404, 409, 412, 428) },
    } as FastifySchema,
  }
  app.put<{ Params: Params }>('/v1/catalog/resources/:code', updateRoute, update)
  app.put<{ Params: Params }>('/v1/catalog/resources/:category/:seq', updateRoute, update)

  const retire = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const resource = await repo.retire(codeOf(request.params), actor(request), requiredIfMatch(request.headers['if-match']))
    await afterWrite(request)
    reply.header('etag', etag(resource))
    return resource
  }
  const retireRoute = {
    onRequest: admin,
    config: { audit: { operation: 'catalog.retire' } },
    validatorCompiler,
    schema: {
      tags: ['catalog'],
      summary: 'Retire a catalogue resource (catalogue admin): queries then answer 410 RESOURCE_RETIRED',
      description: 'Adds a version with status retired and the entry unchanged; every earlier version stays readable. Answers the retired resource.',
      security: [{ bearer: [] }],
      headers: ifMatchHeaders,
      response: { 200: entrySchema, ...problemResponses(401, 403, 404, 409, 412, 428, 503) },
    } as FastifySchema,
  }
  app.delete<{ Params: Params }>('/v1/catalog/resources/:code', retireRoute, retire)
  app.delete<{ Params: Params }>('/v1/catalog/resources/:category/:seq', retireRoute, retire)

  // ---- version history: any authenticated principal ----

  const listVersions = async (request: FastifyRequest<{ Params: Params }>) => {
    const code = codeOf(request.params)
    const versions = await repo.versions(code)
    if (versions.length === 0) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
    return { code, versions }
  }
  const versionsRoute = {
    onRequest: [app.authenticate],
    schema: {
      tags: ['catalog'],
      summary: 'Version history of a catalogue resource, oldest first',
      security: [{ bearer: [] }],
      response: {
        200: { type: 'object', properties: { code: { type: 'string' }, versions: { type: 'array', items: versionInfoSchema } } },
        ...problemResponses(401, 404),
      },
    },
  }
  app.get<{ Params: Params }>('/v1/catalog/resources/:code/versions', versionsRoute, listVersions)
  app.get<{ Params: Params }>('/v1/catalog/resources/:category/:seq/versions', versionsRoute, listVersions)

  const oneVersion = async (request: FastifyRequest<{ Params: VersionParams }>, reply: FastifyReply) => {
    const code = codeOf(request.params)
    const resource = await repo.version(code, Number(request.params.n))
    if (!resource) {
      const known = (await repo.versions(code)).length > 0
      throw known
        ? new Problem(404, 'CATALOG_VERSION_NOT_FOUND', `resource ${code} has no version ${request.params.n}`)
        : new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
    }
    reply.header('etag', etag(resource))
    return viewFor(request, resource)
  }
  // Every path parameter is named in the schema, or the OpenAPI document is invalid.
  const versionRoute = (codeParams: Record<string, object>) => ({
    onRequest: [app.authenticate],
    schema: {
      tags: ['catalog'],
      summary: 'One version of a catalogue resource, as it was',
      security: [{ bearer: [] }],
      params: { type: 'object', properties: { ...codeParams, n: { type: 'string', pattern: '^[1-9][0-9]{0,8}$', description: 'version number' } } },
      response: { 200: entrySchema, ...problemResponses(400, 401, 404) },
    },
  })
  app.get<{ Params: VersionParams }>('/v1/catalog/resources/:code/versions/:n', versionRoute({ code: { type: 'string', description: 'resource code, percent-encoded (101001%2F00001)' } }), oneVersion)
  app.get<{ Params: VersionParams }>('/v1/catalog/resources/:category/:seq/versions/:n', versionRoute({ category: { type: 'string' }, seq: { type: 'string' } }), oneVersion)
}
