// The simulated 自然资源 real-estate registry service, answering from the synthetic
// population (registry.ts holds the model). Two operations, both keyed by the holder's id
// number and name: the registry answers for the holder of the id only when the name agrees;
// otherwise it reports no property, as it would for a stranger.
//   POST /v1/property/verify  → { hasProperty, propertyCount, totalArea }   (homes only)
//   POST /v1/property/detail  → { hasProperty, properties: [...] }          (every unit)
import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { findPersonById } from '../population.js'
import { holdingsOf, summarise, type Holding } from './registry.js'

export interface PropertyProviderOptions {
  /** Hold every answer this long: lets tests drive the gateway's upstream timeout. */
  delayMs?: number
  logger?: boolean
  /** Honour `x-sim-delay-ms` per request. Test rigs only: it lets any caller slow the service. */
  allowFaultHeaders?: boolean
}

interface HolderQuery {
  idNumber: string
  name: string
}

const MAX_DELAY_MS = 60_000

const body = {
  type: 'object',
  required: ['idNumber', 'name'],
  additionalProperties: false,
  properties: {
    idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' },
    name: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const

const verifySchema = {
  body,
  response: {
    200: {
      type: 'object',
      required: ['hasProperty', 'propertyCount', 'totalArea'],
      additionalProperties: false,
      properties: {
        hasProperty: { type: 'boolean' },
        propertyCount: { type: 'integer' },
        totalArea: { type: 'number' },
      },
    },
  },
} as const

const detailSchema = {
  body,
  response: {
    200: {
      type: 'object',
      required: ['hasProperty', 'properties'],
      additionalProperties: false,
      properties: {
        hasProperty: { type: 'boolean' },
        properties: {
          type: 'array',
          items: {
            type: 'object',
            required: ['certificateNo', 'region', 'usage', 'area', 'registeredOn', 'encumbered'],
            additionalProperties: false,
            properties: {
              certificateNo: { type: 'string' },
              region: { type: 'string' },
              usage: { type: 'string' },
              area: { type: 'number' },
              registeredOn: { type: 'string' },
              encumbered: {
                type: 'object',
                required: ['mortgage', 'seizure'],
                additionalProperties: false,
                properties: { mortgage: { type: 'boolean' }, seizure: { type: 'boolean' } },
              },
            },
          },
        },
      },
    },
  },
} as const

const parseDelay = (header: string | string[] | undefined): number | undefined => {
  if (typeof header !== 'string' || !/^[0-9]{1,5}$/.test(header)) return undefined
  const ms = Number(header)
  return ms <= MAX_DELAY_MS ? ms : undefined
}

/** The units registered to the holder of this id number, or [] unless the name agrees. */
const holdingsFor = ({ idNumber, name }: HolderQuery): Holding[] => {
  const person = findPersonById(idNumber)
  return person !== undefined && person.name === name ? holdingsOf(person.index) : []
}

export const buildPropertyProvider = (opts: PropertyProviderOptions = {}): FastifyInstance => {
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

  app.post<{ Body: HolderQuery }>('/v1/property/verify', { schema: verifySchema }, async (request) =>
    summarise(holdingsFor(request.body)),
  )

  app.post<{ Body: HolderQuery }>('/v1/property/detail', { schema: detailSchema }, async (request) => {
    const properties = holdingsFor(request.body)
    return { hasProperty: summarise(properties).hasProperty, properties }
  })

  return app
}
