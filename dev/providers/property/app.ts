// The simulated 自然资源 real-estate registry service, answering from the synthetic
// population (registry.ts holds the model). Two operations, both keyed by the holder's id
// number and name: the registry answers for the holder of the id only when the name agrees;
// otherwise it reports no property, as it would for a stranger.
//   POST /v1/property/verify  → { hasProperty, propertyCount, totalArea }   (homes only)
//   POST /v1/property/detail  → { hasProperty, properties: [...] }          (every unit)
import type { FastifyInstance } from 'fastify'
import { findPersonById } from '../population.js'
import { createSimulator, personQueryBody, type PersonQuery, type SimulatorOptions } from '../simulator.js'
import { holdingsOf, summarise, type Holding } from './registry.js'

export type PropertyProviderOptions = SimulatorOptions

type HolderQuery = PersonQuery
const body = personQueryBody

/** POST /v1/property/verify: the summary of homes (also the Nanjing registry's answer). */
export const propertyVerifySchema = {
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

/** The units registered to the holder of this id number, or [] unless the name agrees. */
const holdingsFor = ({ idNumber, name }: HolderQuery): Holding[] => {
  const person = findPersonById(idNumber)
  return person !== undefined && person.name === name ? holdingsOf(person.index) : []
}

export const buildPropertyProvider = (opts: PropertyProviderOptions = {}): FastifyInstance => {
  const app = createSimulator(opts)

  app.post<{ Body: HolderQuery }>('/v1/property/verify', { schema: propertyVerifySchema }, async (request) =>
    summarise(holdingsFor(request.body)),
  )

  app.post<{ Body: HolderQuery }>('/v1/property/detail', { schema: detailSchema }, async (request) => {
    const properties = holdingsFor(request.body)
    return { hasProperty: summarise(properties).hasProperty, properties }
  })

  return app
}
