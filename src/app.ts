// Composes the gateway: plugins in pipeline order (DESIGN.md §3). Each plugin serves one
// step; the audit plugin's onSend is the seal step for every audited route.
import Fastify, { type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { monotonicFactory } from 'ulid'
import type { Config } from './config/index.js'
import { domainFormats } from './exchange/formats.js'
import problems from './problem-plugin.js'
import stores from './stores/plugin.js'
import nodeIdentity from './pki/plugin.js'
import audit from './audit/plugin.js'
import auth from './auth/plugin.js'
import catalog from './catalog/plugin.js'
import policy from './policy/plugin.js'
import exchange from './exchange/plugin.js'
import health from './ops/health.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,64}$/
const ulid = monotonicFactory()

// Personal data never reaches the logs, whatever a later log call includes.
export const redactPaths = [
  'req.headers.authorization',
  'req.body',
  'body',
  '*.idNumber',
  '*.name',
  '*.client_assertion',
  '*.access_token',
]

export async function buildApp(config: Config, opts: { logger?: boolean | object } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, redact: { paths: redactPaths, censor: '[redacted]' } },
    bodyLimit: config.http.bodyLimit,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['tongban-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : ulid()
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false, formats: domainFormats } },
  })
  app.decorate('config', config)

  // Keep the exact request bytes: the audit record holds their digest.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  // Only JSON (and the token endpoint's form encoding) is accepted: anything else is a 415.
  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer
    parseJson(request, body as unknown as string, done)
  })
  app.addHook('onRequest', async (request, reply) => {
    reply.header('tongban-request-id', request.id)
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Tongban (通办) data-sharing exchange gateway', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await app.register(problems)
  await app.register(stores)
  await app.register(nodeIdentity)
  await app.register(audit)
  await app.register(auth)
  await app.register(catalog)
  await app.register(policy)
  await app.register(exchange)
  await app.register(health)
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  return app
}
