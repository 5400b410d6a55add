// Tongban-Data-Notice (docs/disputes.md): once a provider corrected disputed data, later
// answers of that resource about that subject say so. The lookup runs on every answer
// (src/exchange/plugin.ts, answerNotes), so it is one Map lookup in memory; the map is the
// corrected disputes of PostgreSQL, reloaded on every replica when any replica resolves one
// (the `disputes` bus message) and every 30 s as a safety net.
import type { AuditRecord } from '../evidence/evidence.js'
import type { Db } from '../stores/postgres.js'
import { corrections } from './store.js'

export const DATA_NOTICE_HEADER = 'tongban-data-notice'

/** `corrected; dispute="<id>"; effective="<YYYY-MM-DD>"; items="<a b>"` (RFC 8941 parameters). */
export const noticeValue = (c: { id: string; effectiveFrom: string; items: string[] }) =>
  `corrected; dispute="${c.id}"; effective="${c.effectiveFrom}"; items="${c.items.join(' ')}"`

// Exactly what noticeValue writes: a dispute id (ULID), a date, 1–100 item names as the
// filing route admits them (src/disputes/routes.ts). Nothing to escape in any of them.
const ITEM = '[A-Za-z][A-Za-z0-9]{0,63}'
const NOTICE_SHAPE = new RegExp(`^corrected; dispute="[0-9A-HJKMNP-TV-Z]{26}"; effective="[0-9]{4}-[0-9]{2}-[0-9]{2}"; items="${ITEM}(?: ${ITEM}){0,99}"$`)

/**
 * A next hop's Tongban-Data-Notice, passed on only when it has noticeValue's shape (one
 * header, nothing else in it): null otherwise, and the hop drops it (src/tiers/relay.ts).
 */
export const wellFormedNotice = (v: unknown): string | null => (typeof v === 'string' && v.length <= 7000 && NOTICE_SHAPE.test(v) ? v : null)

export class DataNotices {
  // Resource, then subject hash: no key string is built per answer.
  private byResource = new Map<string, Map<string, string>>()
  private count = 0
  constructor(private readonly db: Db) {}

  async load(): Promise<void> {
    this.replace(await corrections(this.db))
  }

  /** The whole set at once (ordered by resolution time: the latest correction of a subject wins). */
  replace(list: Array<{ id: string; resource: string; subject: string; effectiveFrom: string; items: string[] }>): void {
    const next = new Map<string, Map<string, string>>()
    for (const c of list) {
      let subjects = next.get(c.resource)
      if (!subjects) next.set(c.resource, (subjects = new Map()))
      subjects.set(c.subject, noticeValue(c))
    }
    this.byResource = next
    this.count = list.length
  }

  get size(): number {
    return this.count
  }

  /** The answer note: only answers that released data about a subject. */
  readonly note = (r: AuditRecord): readonly [string, string] | null => {
    if (this.count === 0 || r.subject === undefined || r.resource === null || r.decision !== 'allowed') return null
    const v = this.byResource.get(r.resource)?.get(r.subject)
    return v === undefined ? null : [DATA_NOTICE_HEADER, v]
  }
}
