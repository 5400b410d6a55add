// Grants as the request path sees them: every active grant of this node in memory, indexed
// by consumer department and resource, reloaded whenever any replica publishes a change.
// Expiry needs no message: validity is checked against the clock on every query.
import type { Db } from '../stores/postgres.js'

export interface Grant {
  id: string
  applicationId: string
  consumerDepartment: string
  consumerSystem: string | null
  resource: string
  providerDepartment: string
  items: string[]
  purposes: string[]
  validFrom: Date
  validTo: Date
  dailyQuota: number
  status: 'active' | 'revoked' | 'expired'
  revokedAt: Date | null
}

export const grantFromRow = (r: any): Grant => ({
  id: r.id,
  applicationId: r.application_id,
  consumerDepartment: r.consumer_department,
  consumerSystem: r.consumer_system,
  resource: r.resource,
  providerDepartment: r.provider_department,
  items: r.items,
  purposes: r.purposes,
  validFrom: r.valid_from,
  validTo: r.valid_to,
  dailyQuota: r.daily_quota,
  status: r.status,
  revokedAt: r.revoked_at ?? null,
})

/** When a grant stopped working: its revocation, or the end of its validity if that came first. */
const endOf = (g: Grant): number =>
  g.status === 'revoked' && g.revokedAt ? Math.min(g.revokedAt.getTime(), g.validTo.getTime()) : g.validTo.getTime()


export type GrantMatch =
  | { grant: Grant }
  | { grant: null; why: 'none' | 'purpose' | 'expired' | 'not-yet-valid' | 'revoked' }

export class GrantCache {
  private byKey = new Map<string, Grant[]>()
  private loading: Promise<void> | null = null
  private again = false

  constructor(private readonly db: Db) {}

  /** Reloads; calls arriving during a reload coalesce into one more reload. */
  load(): Promise<void> {
    if (this.loading) {
      this.again = true
      return this.loading
    }
    this.loading = (async () => {
      do {
        this.again = false
        // Recently ended grants stay known so that a refusal can say why (expired, revoked).
        const { rows } = await this.db.query(
          "SELECT * FROM grants WHERE status = 'active' OR coalesce(revoked_at, valid_to) > now() - interval '30 days'",
        )
        const next = new Map<string, Grant[]>()
        for (const g of rows.map(grantFromRow)) {
          const k = `${g.consumerDepartment}|${g.resource}`
          next.set(k, [...(next.get(k) ?? []), g])
        }
        this.byKey = next
      } while (this.again)
    })().finally(() => {
      this.loading = null
    })
    return this.loading
  }

  /**
   * The grant that lets this department (and system) use the resource for this purpose now.
   * Several may match; the one valid longest is used (its quota is the one counted).
   */
  match(department: string, system: string, resource: string, purpose: string, now = Date.now()): GrantMatch {
    const candidates = (this.byKey.get(`${department}|${resource}`) ?? []).filter(
      (g) => g.consumerSystem === null || g.consumerSystem === system,
    )
    if (candidates.length === 0) return { grant: null, why: 'none' }
    const forPurpose = candidates.filter((g) => g.purposes.includes(purpose))
    if (forPurpose.length === 0) return { grant: null, why: 'purpose' }
    const valid = forPurpose.filter((g) => g.status === 'active' && g.validFrom.getTime() <= now && now < g.validTo.getTime())
    if (valid.length === 0) {
      if (forPurpose.some((g) => g.status === 'active' && g.validFrom.getTime() > now)) return { grant: null, why: 'not-yet-valid' }
      // The refusal says how the latest grant ended: an older revoked one does not make a
      // newer grant that simply expired "revoked".
      const last = forPurpose.reduce((a, b) => (endOf(b) > endOf(a) ? b : a))
      const revoked = last.status === 'revoked' && last.revokedAt !== null && last.revokedAt < last.validTo
      return { grant: null, why: revoked ? 'revoked' : 'expired' }
    }
    return { grant: valid.reduce((a, b) => (b.validTo > a.validTo ? b : a)) }
  }
}
