// The simulated public-security (公安) identity verification service: does this id
// number belong to a person of this name? It answers match / no match and nothing else,
// as the real service does, from the synthetic population.
import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { findPersonById } from '../population.js'

export interface IdentityProviderOptions {
  /** Hold every answer this long: lets tests drive the gateway's upstream timeout. */
  delayMs?: number
  logger?: boolean
  /** Honour `x-sim-delay-ms` per request. Test rigs only: it lets any caller slow the service. */
  allowFaultHeaders?: boolean
}

const MAX_DELAY_MS = 60_000

const verifySchema = {
  body: {
    type: 'object',
    required: ['idNumber', 'name'],
    additionalProperties: false,
    properties: {
      idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' },
      name: { type: 'string', minLength: 1, maxLength: 64 },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['match'],
      additionalProperties: false,
      properties: { match: { type: 'boolean' } },
    },
  },
} as const

const parseDelay = (header: string | string[] | undefined): number | undefined => {
  if (typeof header !== 'string' || !/^[0-9]{1,5}$/.test(header)) return undefined
  const ms = Number(header)
  return ms <= MAX_DELAY_MS ? ms : undefined
}

export const buildIdentityProvider = (opts: IdentityProviderOptions = {}): FastifyInstance => {
  // A strict service: a number where a string belongs, or an unknown field, is a 400,
  // not something to coerce or drop silently.
  const app = Fastify({
    logger: opts.logger ?? false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  })
  const delayMs = opts.delayMs ?? 0

  app.addHook('onRequest', async (request, reply) => {
    let ms = delayMs
    if (opts.allowFaultHeaders && request.headers['x-sim-delay-ms'] !== undefined) {
      const asked = parseDelay(request.headers['x-sim-delay-ms'])
      if (asked === undefined) {
        return reply.code(400).send({ error: `x-sim-delay-ms must be an integer from 0 to ${MAX_DELAY_MS}` })
      }
      ms = asked
    }
    if (ms > 0) await sleep(ms)
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.post<{ Body: { idNumber: string; name: string } }>(
    '/v1/identity/verify',
    { schema: verifySchema },
    async (request) => {
      const person = findPersonById(request.body.idNumber)
      return { match: person !== undefined && person.name === request.body.name }
    },
  )

  return app
}
