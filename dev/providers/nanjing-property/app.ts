// The simulated 南京市不动产登记中心: Nanjing's own real-estate registry. It keeps the units
// that lie in Nanjing (its eleven districts, 3201xx) — the same units the provincial
// registry (../property) lists for them, from the same model (../property/registry.ts) — and
// answers the same verification for them only:
//   POST /v1/property/verify  {idNumber, name} → { hasProperty, propertyCount, totalArea }
// counting the holder's homes in Nanjing. As the provincial one, it answers for the holder
// of the id only when the name agrees.
import type { FastifyInstance } from 'fastify'
import { findPersonById } from '../population.js'
import { holdingsOf, summarise, type Holding, type PropertySummary } from '../property/registry.js'
import { createSimulator, type PersonQuery, type SimulatorOptions } from '../simulator.js'
import { propertyVerifySchema } from '../property/app.js'

export type NanjingPropertyProviderOptions = SimulatorOptions

/** GB/T 2260 prefix of Nanjing's districts. */
export const NANJING_PREFIX = '3201'

type HolderQuery = PersonQuery

/** The units of person `index` registered in Nanjing. */
export const nanjingHoldingsOf = (index: number): Holding[] => holdingsOf(index).filter((h) => h.region.startsWith(NANJING_PREFIX))

export const nanjingAnswer = ({ idNumber, name }: HolderQuery): PropertySummary => {
  const p = findPersonById(idNumber)
  return summarise(p !== undefined && p.name === name ? nanjingHoldingsOf(p.index) : [])
}

export const buildNanjingPropertyProvider = (opts: NanjingPropertyProviderOptions = {}): FastifyInstance => {
  const app = createSimulator(opts)
  app.post<{ Body: HolderQuery }>('/v1/property/verify', { schema: propertyVerifySchema }, async (request) => nanjingAnswer(request.body))
  return app
}
