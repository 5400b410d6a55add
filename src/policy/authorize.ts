// The authorize step: share type per resource and per item (DESIGN.md §2). Returns the
// items the caller may receive; refuses with a stable code otherwise.
import { Problem } from '../problem.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { Principal } from '../auth/principal.js'

export interface Authorization {
  items: ReadonlySet<string>
}

const unconditionalItems = new WeakMap<CatalogResource, ReadonlySet<string>>()

export function authorize(resource: CatalogResource, _principal: Principal): Authorization {
  if (resource.status === 'retired') {
    throw new Problem(410, 'RESOURCE_RETIRED', `resource ${resource.code} has been retired`)
  }
  switch (resource.sharing.type) {
    case 'none':
      throw new Problem(403, 'POLICY_SHARE_NONE', `resource ${resource.code} is not shared (不予共享): ${resource.sharing.legalBasis ?? ''}`.trim())
    case 'conditional':
      // Grants (有条件共享) arrive with the sharing-rules work; until then nothing conditional is released.
      throw new Problem(403, 'POLICY_NO_GRANT', `resource ${resource.code} is shared on condition; an approved grant is required`)
  }
  let items = unconditionalItems.get(resource)
  if (!items) {
    items = new Set(resource.items.filter((i) => i.shareType === 'unconditional').map((i) => i.name))
    unconditionalItems.set(resource, items)
  }
  return { items }
}
