// Composes the gateway: plugins in pipeline order (docs/architecture.md). Each plugin serves one
// step; the audit plugin's onSend is the seal step for every audited route.
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import pino from 'pino'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Config } from './config/index.js'
import { requestValidators } from './validation/ajv.js'
import { CLIENT_REQUEST_ID, INTERNAL_HEADER, INTERNAL_SECRET, ulid } from './exchange/request-id.js'
import { holdsPersonalNumber } from './gb/personal-number.js'
import { peerNodeOf } from './tiers/listener.js'
import problems, { sendProblem } from './problems/plugin.js'
import { Problem } from './problems/problem.js'
import stores from './stores/plugin.js'
import nodeIdentity from './pki/plugin.js'
import audit from './audit/plugin.js'
import people from './people/plugin.js'
import auth from './auth/plugin.js'
import onboarding from './onboarding/routes.js'
import catalog from './catalog/plugin.js'
import policy from './policy/plugin.js'
import tiers from './tiers/plugin.js'
import exchange from './exchange/plugin.js'
import health from './ops/health.js'
import metrics from './ops/metrics.js'
import { enrichOpenApi } from './ops/openapi.js'
import securityHeaders from './ops/security-headers.js'
import batches from './bulk/plugin.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/**
 * Whose Tongban-Request-Id is the request id: only this process's own in-process calls and
 * a neighbour node over the node listener (mutual TLS, a node certificate), which carry the
 * id of the query they serve across hops. A client's id is never the request id — two
 * records could share it — it is kept as clientRequestId instead.
 */
function carriesQueryId(req: FastifyRequest['raw']): boolean {
  if (req.headers[INTERNAL_HEADER] === INTERNAL_SECRET) return true
  if (!(req.socket as { encrypted?: boolean } | undefined)?.encrypted) return false
  try {
    return !!peerNodeOf({ raw: req } as FastifyRequest)
  } catch {
    return false
  }
}

const PERSONAL = Symbol('personal data')

/** The caller's own well-formed request id (not the request id), PERSONAL, or null. */
function clientRequestId(request: FastifyRequest): string | typeof PERSONAL | null {
  const given = request.headers['tongban-request-id']
  if (typeof given !== 'string' || given === request.id) return null
  if (holdsPersonalNumber(given)) return PERSONAL
  return CLIENT_REQUEST_ID.test(given) ? given : null
}

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

// The access log: one lean line per answer, written when it has gone — no headers, no
// body, so no personal data. Fastify's own two lines per request (incoming, completed, with
// the request's headers) were one of the largest costs per query (docs/performance.md).
// The line has only fixed fields, so it goes through a logger without the redaction walk.
// On audited routes (and relay legs, which seal their own record) the audit record already
// is the access log (request id, time, caller, resource, decision, reason — durable and
// signed), so their answers are logged at debug level unless they failed (5xx); every other
// route's at info.
class AccessLog extends LogController {
  constructor(private readonly lines?: pino.Logger) {
    super()
  }
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) return super.requestCompleted(error, request, reply)
    const log: { info(o: object, m: string): void; debug(o: object, m: string): void; isLevelEnabled?(l: string): boolean } = this.lines ?? request.log
    const cfg = request.routeOptions.config
    const quiet = (reply.statusCode < 500 && (cfg?.audit !== undefined || cfg?.sealsItself === true)) || (cfg?.probe === true && reply.statusCode === 200)
    if (quiet && log.isLevelEnabled?.('debug') === false) return
    const line = { reqId: request.id, method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }
    if (quiet) log.debug(line, 'answered')
    else log.info(line, 'answered')
  }
}

export async function buildApp(config: Config, opts: { logger?: boolean | object } = {}): Promise<FastifyInstance> {
  // Buffered: one write per 4 KiB of log instead of one per line (the synchronous write
  // per request showed in the profile). pino flushes it on exit; a kill -9 can lose the
  // last few lines of the log — never an audit record, which is in PostgreSQL.
  const stream = opts.logger === undefined ? pino.destination({ dest: 1, sync: false, minLength: 4096 }) : undefined
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, redact: { paths: redactPaths, censor: '[redacted]' }, stream },
    bodyLimit: config.http.bodyLimit,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['tongban-request-id']
      return typeof given === 'string' && CLIENT_REQUEST_ID.test(given) && carriesQueryId(req) ? given : ulid()
    },
    // While closing, requests still arriving on open connections get a problem+json 503
    // (the onRequest hook below), not Fastify's own JSON.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    logController: new AccessLog(stream && pino({ level: config.logLevel }, stream)),
    // URLs the router cannot even parse (bad percent-encoding, an overlong segment) get
    // problem+json too, with the request id (found by test/fuzz.test.ts).
    frameworkErrors: (error, request, reply) => {
      reply.header('tongban-request-id', request.id)
      const own = clientRequestId(request)
      if (typeof own === 'string') reply.header('tongban-client-request-id', own)
      sendProblem(request, reply, error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new Problem(414, 'INPUT_URL_TOO_LONG', 'a segment of the URL is too long')
        : new Problem(400, 'INPUT_BAD_URL', 'the URL is not validly percent-encoded'))
    },
  })
  app.setValidatorCompiler(({ schema }) => requestValidators.compile(schema))
  app.decorate('config', config)

  // Keep the exact request bytes: the audit record holds their digest.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  // Only JSON (and the token endpoint's form encoding) is accepted: anything else is a 415.
  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer
    parseJson(request, body as unknown as string, (err, parsed) => {
      // Fastify's parser says "not valid JSON" of valid JSON it refuses on purpose (prototype
      // poisoning); a second parse, on that error path only, tells the two apart.
      if (err && isValidJson(body as Buffer)) done(new Problem(400, 'INPUT_MALFORMED_JSON', 'request body uses a forbidden property name (__proto__, or prototype under constructor)'), undefined)
      else done(err, parsed)
    })
  })
  // First of the onRequest hooks: even a refusal answered by a hook carries the headers.
  await app.register(securityHeaders)
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('tongban-request-id', request.id)
    if (closing) {
      // Answered here, before the later hooks: the audit step still records the refusal.
      request.audit = {}
      reply.header('connection', 'close')
      sendProblem(request, reply, new Problem(503, 'NODE_SHUTTING_DOWN', 'this node is shutting down; send the request to another replica'))
      return
    }
    done()
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Tongban (通办) data-sharing exchange gateway', version: '1' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'TONGBAN_METRICS_TOKEN (static; not an OAuth token)' },
        },
      },
    },
    transformObject: (documentObject) => enrichOpenApi('openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject),
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await app.register(problems)
  await app.register(stores)
  await app.register(metrics)
  await app.register(nodeIdentity)
  await app.register(audit)
  // The caller's own request id (after the audit step's onRequest: the refusal is audited).
  app.addHook('onRequest', (request, reply, done) => {
    const given = clientRequestId(request)
    if (given === PERSONAL) {
      sendProblem(request, reply, new Problem(400, 'INPUT_REQUEST_ID_PERSONAL_DATA', 'Tongban-Request-Id holds a resident id number or a credit code: personal data never enters the audit log'))
      return
    }
    if (given) {
      request.audit.clientRequestId = given
      reply.header('tongban-client-request-id', given)
    }
    done()
  })
  // Before auth: its authenticate hook accepts a person's session cookie.
  await app.register(people)
  await app.register(auth)
  await app.register(onboarding)
  await app.register(catalog)
  // Before policy and exchange: they use its node channel (application messages) and its router (the engine's route step).
  await app.register(tiers)
  // Before policy: it tells the departments concerned of each event (src/notify/events.ts).
  await app.register((await import('./notify/plugin.js')).default)
  await app.register(policy)
  await app.register(exchange)
  // Electronic licences: the engine on the licence library's resources, and the seal checks.
  await app.register((await import('./licences/plugin.js')).default)
  // After exchange: a corrected subject's later answers carry Tongban-Data-Notice (answerNotes).
  await app.register((await import('./disputes/plugin.js')).default)
  await app.register((await import('./auditor/plugin.js')).default)
  await app.register(batches)
  await app.register((await import('./workbench/plugin.js')).default)
  await app.register(health)
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  return app
}

const isValidJson = (body: Buffer): boolean => {
  try {
    JSON.parse(body.toString('utf8'))
    return true
  } catch {
    return false
  }
}
