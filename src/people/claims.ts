// From the provider's claims to a person of this node: department, region and roles.
// The ceiling rule (docs/people.md): a role is granted only if the role map names it AND the
// person's department may exercise it here — it has an active registered system holding
// that role (certificate not revoked), or people.departmentRoles lists the role for it. So a
// person never holds more than their department's rights, whatever the provider says.
import { checkCreditCode } from '../gb/credit-code.js'
import { isCurrentRegion, tierOfRegion, type RegionTier } from '../gb/region.js'
import { Problem } from '../problems/problem.js'
import { conflictingRoles, ROLES, type Role } from '../auth/principal.js'
import type { RegisteredSystem } from '../auth/systems.js'

export interface ClaimNames {
  departmentCode: string
  departmentName: string
  region: string
  roles: string
  name: string
}

export interface PeopleRules {
  claims: ClaimNames
  roleMap: Record<string, Role>
  departmentRoles: Record<string, Role[]>
}

export interface SignedInPerson {
  person: { sub: string; name: string }
  department: { code: string; name: string }
  region: string
  tier: RegionTier
  roles: Role[]
}

type Claims = Record<string, unknown>

const text = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined)

/** The provider's role names: a list of strings, or one space- or comma-separated string. */
function providerRoles(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((r): r is string => typeof r === 'string')
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean)
  return []
}

/** Claims the gateway needs that an ID token may leave to userinfo. */
export const missingClaims = (claims: Claims, names: ClaimNames): boolean =>
  [names.departmentCode, names.roles, names.name].some((n) => claims[n] === undefined)

export function personOf(claims: Claims, rules: PeopleRules, systemsOf: (department: string) => RegisteredSystem[]): SignedInPerson {
  const n = rules.claims
  const sub = text(claims.sub)
  if (!sub) throw new Problem(401, 'AUTH_SIGNIN_FAILED', 'the identity provider named no subject')
  const code = text(claims[n.departmentCode])?.toUpperCase()
  if (!code || !checkCreditCode(code).ok) throw new Problem(403, 'AUTH_SIGNIN_CLAIMS', `claim ${n.departmentCode} must be the GB 32100 credit code of the person's department`)
  const systems = systemsOf(code).filter((s) => s.status === 'active' && !s.certRevoked)
  const region = systems[0]?.region ?? text(claims[n.region])
  if (!region || !/^[1-9][0-9]{5}$/.test(region) || !isCurrentRegion(region)) throw new Problem(403, 'AUTH_SIGNIN_CLAIMS', `claim ${n.region} must be the GB/T 2260 region of the person's department`)

  const mayHold = new Set<Role>([...systems.flatMap((s) => s.roles), ...(rules.departmentRoles[code] ?? [])])
  const mapped = providerRoles(claims[n.roles]).map((r) => rules.roleMap[r]).filter((r): r is Role => r !== undefined)
  const roles = ROLES.filter((r) => mapped.includes(r) && mayHold.has(r))
  if (roles.length === 0) {
    throw new Problem(403, 'AUTH_NO_ROLE', mapped.length === 0
      ? 'none of your roles at the identity provider is a role of this gateway'
      : `your department may not exercise the role(s) ${[...new Set(mapped)].join(', ')} on this node`)
  }
  const conflict = conflictingRoles(roles)
  if (conflict) throw new Problem(403, 'AUTH_ROLE_CONFLICT', conflict)
  return {
    person: { sub, name: text(claims[n.name]) ?? sub },
    department: { code, name: text(claims[n.departmentName]) ?? systems[0]?.departmentName ?? code },
    region,
    tier: tierOfRegion(region),
    roles,
  }
}
