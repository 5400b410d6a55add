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
}

// GB/T 2260 code → tier: 100000 national, XX0000 province, XXYY00 city, otherwise county.
export function tierOf(region: string): Tier {
  if (region === '100000') return 'national'
  if (region.endsWith('0000')) return 'province'
  if (region.endsWith('00')) return 'city'
  return 'county'
}

// Separation of duties (GB/T 39477): whoever administers the catalogue never audits it.
export function conflictingRoles(roles: readonly string[]): string | null {
  return roles.includes('catalog-admin') && roles.includes('auditor')
    ? 'catalog-admin and auditor cannot be held by one principal'
    : null
}
