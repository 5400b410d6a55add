// The simulated 学历证书 verification service (as 学信网 answers it), from the synthetic
// population; records.ts holds the model.
//   POST /v1/degree/verify  {certificateNo, name, idNumber}
//     → { match: true, level, institution, graduationYear }   the certificate is the holder's
//     → { match: false }                                       anything else
// A number nobody holds, a holder of another name or id number: the same { match: false },
// so a caller learns nothing about certificates that are not the person's.
import type { FastifyInstance } from 'fastify'
import { createSimulator, type SimulatorOptions } from '../simulator.js'
import { findCertificate, type Level } from './records.js'

export type DegreeProviderOptions = SimulatorOptions

interface DegreeQuery {
  certificateNo: string
  name: string
  idNumber: string
}

export type DegreeAnswer = { match: false } | { match: true; level: Level; institution: string; graduationYear: number }

const verifySchema = {
  body: {
    type: 'object',
    required: ['certificateNo', 'name', 'idNumber'],
    additionalProperties: false,
    properties: {
      certificateNo: { type: 'string', pattern: '^[0-9]{18}$' },
      name: { type: 'string', minLength: 1, maxLength: 64 },
      idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['match'],
      additionalProperties: false,
      properties: {
        match: { type: 'boolean' },
        level: { type: 'string' },
        institution: { type: 'string' },
        graduationYear: { type: 'integer' },
      },
    },
  },
} as const

export const degreeAnswer = ({ certificateNo, name, idNumber }: DegreeQuery): DegreeAnswer => {
  const found = findCertificate(certificateNo)
  if (!found || found.holder.idNumber !== idNumber || found.holder.name !== name) return { match: false }
  const { level, institution, graduationYear } = found.certificate
  return { match: true, level, institution, graduationYear }
}

export const buildDegreeProvider = (opts: DegreeProviderOptions = {}): FastifyInstance => {
  const app = createSimulator(opts)
  app.post<{ Body: DegreeQuery }>('/v1/degree/verify', { schema: verifySchema }, async (request) => degreeAnswer(request.body))
  return app
}
