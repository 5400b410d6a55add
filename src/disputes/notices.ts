// Tongban-Data-Notice (docs/disputes.md): once a provider corrected disputed data, later
// answers of that resource about that subject say so. The lookup runs on every answer
// (src/exchange/plugin.ts, answerNotes), so it is one Map lookup in memory; the map is the
// corrected disputes of PostgreSQL, reloaded on every replica when any replica resolves one
// (the `disputes` bus message) and every 30 s as a safety net.
import type { AuditRecord } from '../evidence/evidence.js'
import type { Db } from '../stores/postgres.js'
import { corrections } from './store.js'

export const DATA_NOTICE_HEADER = 'tongban-data-notice'

const key = (resource: string, subject: string) => `${resource}\n${subject}`

/** `corrected; dispute="<id>"; effective="<YYYY-MM-DD>"; items="<a b>"` (RFC 8941 parameters). */
export const noticeValue = (c: { id: string; effectiveFrom: string; items: string[] }) =>
  `corrected; dispute="${c.id}"; effective="${c.effectiveFrom}"; items="${c.items.join(' ')}"`

export class DataNotices {
  private byKey = new Map<string, string>()
  constructor(private readonly db: Db) {}

  async load(): Promise<void> {
    const next = new Map<string, string>()
    // Ordered by resolution time: the latest correction of a subject wins.
    for (const c of await corrections(this.db)) next.set(key(c.resource, c.subject), noticeValue(c))
    this.byKey = next
  }

  get size(): number {
    return this.byKey.size
  }

  /** The answer note: only answers that released data about a subject. */
  readonly note = (r: AuditRecord): readonly [string, string] | null => {
    if (this.byKey.size === 0 || r.subject === undefined || r.resource === null || r.decision !== 'allowed') return null
    const v = this.byKey.get(key(r.resource, r.subject))
    return v === undefined ? null : [DATA_NOTICE_HEADER, v]
  }
}
