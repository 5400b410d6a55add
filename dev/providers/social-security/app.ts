// The simulated 人社 social insurance service: did this person pay employee pension
// contributions (企业职工基本养老保险) in this period, for how many months, and where were
// they insured? It answers from the employment model (../employment.ts), which the tax
// bureau's income tax records follow too.
//   POST /v1/social-security/verify  {idNumber, name, from, to}
//     → { contributing, monthsPaid, insuredRegion? }   insuredRegion only with months paid
// A name that does not agree with the id number answers like a person without
// contributions, as would an unknown id number. A period whose start is after its end is
// refused (400): it is a malformed question, not an empty period.
import type { FastifyInstance } from 'fastify'
import { careerOf, contributionsIn } from '../employment.js'
import { findPersonById } from '../population.js'
import { monthNumber } from '../reference.js'
import { createSimulator, type SimulatorOptions } from '../simulator.js'

export type SocialSecurityProviderOptions = SimulatorOptions

interface ContributionQuery {
  idNumber: string
  name: string
  from: string
  to: string
}

export interface ContributionAnswer {
  contributing: boolean
  monthsPaid: number
  insuredRegion?: string
}

const MONTH = '^(199[0-9]|20[0-9]{2})-(0[1-9]|1[0-2])$'

const verifySchema = {
  body: {
    type: 'object',
    required: ['idNumber', 'name', 'from', 'to'],
    additionalProperties: false,
    properties: {
      idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' },
      name: { type: 'string', minLength: 1, maxLength: 64 },
      from: { type: 'string', pattern: MONTH },
      to: { type: 'string', pattern: MONTH },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['contributing', 'monthsPaid'],
      additionalProperties: false,
      properties: {
        contributing: { type: 'boolean' },
        monthsPaid: { type: 'integer' },
        insuredRegion: { type: 'string' },
      },
    },
  },
} as const

/** The answer for a well-formed query whose period starts no later than it ends. */
export const contributionAnswer = ({ idNumber, name, from, to }: ContributionQuery): ContributionAnswer => {
  const p = findPersonById(idNumber)
  if (!p || p.name !== name) return { contributing: false, monthsPaid: 0 }
  const { months, lastRegion } = contributionsIn(careerOf(p.index), monthNumber(from), monthNumber(to))
  return months > 0 ? { contributing: true, monthsPaid: months, insuredRegion: lastRegion } : { contributing: false, monthsPaid: 0 }
}

export const buildSocialSecurityProvider = (opts: SocialSecurityProviderOptions = {}): FastifyInstance => {
  const app = createSimulator(opts)
  app.post<{ Body: ContributionQuery }>('/v1/social-security/verify', { schema: verifySchema }, async (request, reply) => {
    if (request.body.from > request.body.to) {
      return reply.code(400).send({ error: 'from must not be after to' })
    }
    return contributionAnswer(request.body)
  })
  return app
}
