// The simulated public-security (公安) identity verification service: does this id
// number belong to a person of this name? It answers match / no match and nothing else,
// as the real service does, from the synthetic population.
import type { FastifyInstance } from 'fastify'
import { findPersonById } from '../population.js'
import { createSimulator, personQueryBody, type PersonQuery, type SimulatorOptions } from '../simulator.js'

export type IdentityProviderOptions = SimulatorOptions

const verifySchema = {
  body: personQueryBody,
  response: {
    200: {
      type: 'object',
      required: ['match'],
      additionalProperties: false,
      properties: { match: { type: 'boolean' } },
    },
  },
} as const

export const buildIdentityProvider = (opts: IdentityProviderOptions = {}): FastifyInstance => {
  const app = createSimulator(opts)

  app.post<{ Body: PersonQuery }>(
    '/v1/identity/verify',
    { schema: verifySchema },
    async (request) => {
      const person = findPersonById(request.body.idNumber)
      return { match: person !== undefined && person.name === request.body.name }
    },
  )

  return app
}
