// The catalogue as the request path sees it: the newest version of every resource, held in
// memory (one lookup per query, no database round trip) and reloaded on change.
import type { Db } from '../stores/postgres.js'
import type { CatalogEntry, VerifyService } from './types.js'

export interface CatalogResource extends CatalogEntry {
  version: number
  status: 'active' | 'retired'
}

export class CatalogRepository {
  private byCode = new Map<string, CatalogResource>()
  private byService = new Map<string, CatalogResource[]>()

  constructor(private readonly db: Db) {}

  async load(): Promise<void> {
    const { rows } = await this.db.query(
      `SELECT DISTINCT ON (code) entry, version, status FROM catalog_resources ORDER BY code, version DESC`,
    )
    const byCode = new Map<string, CatalogResource>()
    const byService = new Map<string, CatalogResource[]>()
    for (const r of rows) {
      const res: CatalogResource = { ...r.entry, version: r.version, status: r.status }
      byCode.set(res.code, res)
      const svc = res.service?.verifyService
      if (svc && res.status === 'active') byService.set(svc, [...(byService.get(svc) ?? []), res])
    }
    this.byCode = byCode
    this.byService = byService
  }

  get(code: string): CatalogResource | undefined {
    return this.byCode.get(code)
  }

  list(): CatalogResource[] {
    return [...this.byCode.values()]
  }

  /**
   * The resource answering `verify/{service}` for a caller: the one whose provider region is
   * the most specific ancestor of (or equal to) the caller's region — a city registry
   * before the provincial one, the provincial one before the national one.
   */
  forVerifyService(service: VerifyService | string, callerRegion: string): CatalogResource | undefined {
    const candidates = this.byService.get(service)
    if (!candidates) return undefined
    let best: CatalogResource | undefined
    let bestDepth = -1
    for (const c of candidates) {
      const depth = regionDepthCovering(c.provider.region, callerRegion)
      if (depth > bestDepth) {
        best = c
        bestDepth = depth
      }
    }
    return best
  }

  verifyServices(): string[] {
    return [...this.byService.keys()]
  }
}

// 3 = same county, 2 = same city, 1 = same province, 0 = national/other (still usable).
function regionDepthCovering(provider: string, caller: string): number {
  if (provider === caller) return 3
  if (provider.endsWith('0000')) return provider.slice(0, 2) === caller.slice(0, 2) ? 1 : 0
  if (provider.endsWith('00')) return provider.slice(0, 4) === caller.slice(0, 4) ? 2 : 0
  return 0
}
