// Resources this node knows but does not hold: those published by the nodes below it and
// those its parent sent down (the parent's own, the nodes above, the nodes beside). The
// catalogue routes list them beside the own resources, each with the node that holds it.
// The source is attached by the tiers step (src/tiers/plugin.ts): the catalogue itself
// never imports a pipeline step, it only knows this contract.
import type { RegionTier as Tier } from '../gb/region.js'

export interface HeldBy {
  node: string
  region: string
  tier: Tier
}

/** A resource held by another node, as shown to a caller here (no upstream binding). */
export interface ElsewhereEntry {
  heldBy: HeldBy
  resource: { code: string; status: 'active' | 'retired'; [k: string]: unknown }
}

export interface CatalogElsewhere {
  list(): ElsewhereEntry[]
  /** The entry of `code`; with several holders, the one nearest the caller's region. */
  get(code: string, callerRegion?: string): ElsewhereEntry | undefined
}

/** Only the schemas of each operation travel on to a caller. */
export function schemasOnly<T extends { service?: { verifyService?: string; operations: Record<string, { requestSchema?: unknown; responseSchema?: unknown }> } }>(e: T) {
  const { service, ...rest } = e
  return {
    ...rest,
    ...(service
      ? { service: { verifyService: service.verifyService, operations: Object.fromEntries(Object.entries(service.operations).map(([k, o]) => [k, { requestSchema: o.requestSchema, responseSchema: o.responseSchema }])) } }
      : {}),
  }
}
