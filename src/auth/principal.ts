// Who is calling: the claims of a verified access token.
import type { RegionTier as Tier } from '../gb/region.js'

export const ROLES = ['consumer', 'provider', 'catalog-admin', 'auditor', 'operator'] as const
export type Role = (typeof ROLES)[number]

export interface Principal {
  system: string
  department: string
  region: string
  tier: Tier
  roles: Role[]
  /** A person signed in at the workbench (src/people): system is then `person:<sub>`. Undefined for systems. */
  person?: { sub: string; name: string }
}

/** A principal's tier, from its GB/T 2260 region (src/gb/region.ts). */
export { tierOfRegion as tierOf } from '../gb/region.js'

// Separation of duties (GB/T 39477): whoever administers the catalogue never audits it.
export function conflictingRoles(roles: readonly string[]): string | null {
  return roles.includes('catalog-admin') && roles.includes('auditor')
    ? 'catalog-admin and auditor cannot be held by one principal'
    : null
}
