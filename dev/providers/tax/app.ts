// The simulated 税务 service: has this taxpayer paid tax in this year, and how much? It
// answers from the synthetic enterprises (by unified social credit code) and persons (by id
// number); records.ts holds the model.
//   POST /v1/tax/verify  {taxpayerType, taxpayerId, year} → { taxPaid, amountBand, amount }
// A taxpayer the bureau does not know answers like one without tax paid: the gateway's
// consumers learn no more from an unknown identifier than from a taxpayer who paid nothing.
import type { FastifyInstance } from 'fastify'
import { findEnterpriseByCreditCode } from '../enterprises.js'
import { findPersonById } from '../population.js'
import { createSimulator, type SimulatorOptions } from '../simulator.js'
import { AMOUNT_BANDS, enterpriseTaxYear, personTaxYear, type TaxYear } from './records.js'

export type TaxProviderOptions = SimulatorOptions

interface TaxQuery {
  taxpayerType: 'organization' | 'individual'
  taxpayerId: string
  year: number
}

const verifySchema = {
  body: {
    type: 'object',
    required: ['taxpayerType', 'taxpayerId', 'year'],
    additionalProperties: false,
    properties: {
      taxpayerType: { type: 'string', enum: ['organization', 'individual'] },
      taxpayerId: { type: 'string', pattern: '^[0-9A-HJ-NPQRTUWXY]{18}$' },
      year: { type: 'integer', minimum: 1994, maximum: 2099 },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['taxPaid', 'amountBand', 'amount'],
      additionalProperties: false,
      properties: {
        taxPaid: { type: 'boolean' },
        amountBand: { type: 'string', enum: AMOUNT_BANDS },
        amount: { type: 'number' },
      },
    },
  },
} as const

/** What the bureau answers for this query. */
export const taxAnswer = ({ taxpayerType, taxpayerId, year }: TaxQuery): TaxYear => {
  if (taxpayerType === 'organization') {
    const e = findEnterpriseByCreditCode(taxpayerId)
    return e ? enterpriseTaxYear(e.index, year) : { taxPaid: false, amountBand: '0', amount: 0 }
  }
  const p = findPersonById(taxpayerId)
  return p ? personTaxYear(p.index, year) : { taxPaid: false, amountBand: '0', amount: 0 }
}

export const buildTaxProvider = (opts: TaxProviderOptions = {}): FastifyInstance => {
  const app = createSimulator(opts)
  app.post<{ Body: TaxQuery }>('/v1/tax/verify', { schema: verifySchema }, async (request) => taxAnswer(request.body))
  return app
}
