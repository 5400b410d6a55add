// The authorize step (README.md): share type per resource and per item, the grant for
// conditional access (department, system, purpose, validity), then the system's rate limit
// (leased tokens, rate-lease.ts) and the grant's daily quota (one Redis round trip under a
// grant). Returns the items the caller may receive, or refuses with a code.
import { Problem, type ProblemCode } from '../problems/problem.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { Principal } from '../auth/principal.js'
import type { GrantCache, GrantMatch } from './grants.js'
import type { QuotaAdmissions } from './quota.js'
import type { RateLeases } from './rate-lease.js'

export interface Authorization {
  items: ReadonlySet<string>
  grantId?: string
}

export interface PolicyDeps {
  grants: GrantCache
  quota: QuotaAdmissions
  /** The per-system rate limit; null when there is none. */
  rate: RateLeases | null
}

// Items by share type, computed once per catalogue version.
const itemsByType = new WeakMap<CatalogResource, { unconditional: string[]; conditional: Set<string> }>()
const itemsOf = (r: CatalogResource) => {
  let v = itemsByType.get(r)
  if (!v) {
    v = {
      unconditional: r.items.filter((i) => i.shareType === 'unconditional').map((i) => i.name),
      conditional: new Set(r.items.filter((i) => i.shareType === 'conditional').map((i) => i.name)),
    }
    itemsByType.set(r, v)
  }
  return v
}

const NO_GRANT = {
  none: ['POLICY_NO_GRANT', 'an approved grant is required (有条件共享): apply with POST /v1/applications'],
  purpose: ['POLICY_PURPOSE_NOT_GRANTED', 'the grant does not cover this purpose'],
  expired: ['POLICY_GRANT_EXPIRED', 'the grant has expired'],
  'not-yet-valid': ['POLICY_GRANT_NOT_YET_VALID', 'the grant is not valid yet'],
  revoked: ['POLICY_GRANT_REVOKED', 'the grant has been revoked'],
} as const satisfies Record<Extract<GrantMatch, { grant: null }>['why'], readonly [ProblemCode, string]>

/** The 403 of a conditional resource without a usable grant, saying why: for queries and batches alike. */
export function noGrantProblem(m: GrantMatch | null): Problem {
  const [code, detail] = NO_GRANT[m && 'why' in m ? m.why : 'none']
  return new Problem(403, code, detail)
}

export async function authorize(
  deps: PolicyDeps,
  resource: CatalogResource,
  principal: Principal,
  purpose: string,
): Promise<Authorization> {
  if (resource.status === 'retired') {
    throw new Problem(410, 'RESOURCE_RETIRED', `resource ${resource.code} has been retired`)
  }
  if (resource.sharing.type === 'none') {
    throw new Problem(403, 'POLICY_SHARE_NONE', `resource ${resource.code} is not shared (不予共享): ${resource.sharing.legalBasis ?? ''}`.trim())
  }
  const { unconditional, conditional } = itemsOf(resource)
  // A grant is looked for whenever it could add something: always for conditional
  // resources, for unconditional ones only when they have conditional items.
  const m = conditional.size > 0 ? deps.grants.match(principal.department, principal.system, resource.code, purpose) : null
  const grant = m?.grant ?? null
  if (resource.sharing.type === 'conditional' && !grant) {
    throw noGrantProblem(m)
  }

  if (deps.rate) {
    let admitted = deps.rate.take(principal.system)
    if (typeof admitted !== 'boolean') admitted = await admitted
    if (!admitted) throw new Problem(429, 'RATE_LIMITED', `more than ${deps.rate.limit} queries per second from this system`)
  }

  if (grant) {
    let admission
    try {
      admission = await deps.quota.admit(grant.id, grant.dailyQuota)
    } catch {
      // Nothing released under a grant goes uncounted: without Redis, grant use fails closed.
      throw new Problem(503, 'QUOTA_UNAVAILABLE', 'the quota store (Redis) is unavailable; conditional data cannot be released')
    }
    if (!admission.ok) {
      if (admission.why === 'revoked') throw new Problem(403, 'POLICY_GRANT_REVOKED', 'the grant has been revoked')
      throw new Problem(429, 'QUOTA_EXCEEDED', `the daily quota of grant ${grant.id} (${grant.dailyQuota}) is used up`)
    }
  }

  if (!grant) return { items: new Set(unconditional) }
  const items = new Set(unconditional)
  for (const name of grant.items) if (conditional.has(name)) items.add(name)
  return { items, grantId: grant.id }
}
