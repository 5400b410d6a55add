// Audit search (issue 5, item 1): filters → one SQL statement over the partitioned
// audit_records, keyset (cursor) pagination in a stable order (time, chain, seq, idx), and
// a hard page-size cap. Every single-column filter has a (column, time) index, so a filter
// plus "newest first" reads one index range per monthly partition.
import { createHash } from 'node:crypto'
import { Problem } from '../problems/problem.js'
import type { Db } from '../stores/postgres.js'
import type { AuditRecord } from '../evidence/evidence.js'

export const MAX_PAGE = 500
export const DEFAULT_PAGE = 50

export const KINDS = ['query', 'admin', 'audit', 'login'] as const
export type Kind = (typeof KINDS)[number]

export interface SearchFilters {
  from?: string
  to?: string
  department?: string
  system?: string
  region?: string
  provider?: string
  resource?: string
  service?: string
  operation?: string
  kind?: Kind
  decision?: 'allowed' | 'denied' | 'failed'
  reason?: string
  purpose?: string
  caseId?: string
  operator?: string
  node?: string
  requestId?: string
  /** The caller's own Tongban-Request-Id, as the record keeps it. */
  clientRequestId?: string
  chain?: string
  grant?: string
  /** The keyed hash (hmac-sha256:…); a raw identifier is hashed by the route first. */
  subjectHash?: string
  /** Hides the auditor's own calls (audit.* records of this system); set by the routes unless includeOwn. */
  hideAuditOf?: string
}

export interface SearchPage {
  limit?: number
  cursor?: string
  order?: 'asc' | 'desc'
}

export interface SearchHit {
  chain: string
  seq: number
  idx: number
  leaf: string
  record: AuditRecord
}

export interface SearchResult {
  items: SearchHit[]
  nextCursor: string | null
  limit: number
  order: 'asc' | 'desc'
}

/** Resolves catalogue-level filters (provider, service) to resource codes. */
export interface ResourceResolver {
  byProvider(department: string): string[]
  byService(service: string): string[]
}

// The order of the filters in the cursor fingerprint: a cursor only continues the search it came from.
const FILTER_KEYS: (keyof SearchFilters)[] = [
  'from', 'to', 'department', 'system', 'region', 'provider', 'resource', 'service', 'operation', 'kind', 'decision',
  'reason', 'purpose', 'caseId', 'operator', 'node', 'requestId', 'chain', 'grant', 'subjectHash',
  'clientRequestId', 'hideAuditOf',
]

function fingerprint(f: SearchFilters, order: string): string {
  const h = createHash('sha256')
  for (const k of FILTER_KEYS) h.update(`${k}=${f[k] ?? ''}\u0000`)
  h.update(order)
  return h.digest('base64url').slice(0, 12)
}

interface Cursor {
  t: string
  c: string
  s: number
  i: number
  f: string
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.t, c.c, c.s, c.i, c.f])).toString('base64url')
}

export function decodeCursor(s: string): Cursor {
  try {
    const [t, c, sq, i, f] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))
    if (typeof t !== 'string' || Number.isNaN(Date.parse(t)) || typeof c !== 'string' || !Number.isSafeInteger(sq) || !Number.isSafeInteger(i) || typeof f !== 'string') {
      throw new Error('shape')
    }
    return { t, c, s: sq, i, f }
  } catch {
    throw new Problem(400, 'AUDIT_CURSOR_INVALID', 'the cursor is not one this endpoint issued')
  }
}

export interface Where {
  sql: string
  params: unknown[]
}

/** SQL conditions for the filters (prefix: a table alias with its dot, or ''). */
export function whereFor(f: SearchFilters, resolver: ResourceResolver, params: unknown[] = [], prefix = ''): Where {
  const cond: string[] = []
  const p = (v: unknown) => `$${params.push(v)}`
  const col = (c: string) => `${prefix}${c}`
  if (f.from) cond.push(`${col('time')} >= ${p(f.from)}::timestamptz`)
  if (f.to) cond.push(`${col('time')} < ${p(f.to)}::timestamptz`)
  if (f.from && f.to && Date.parse(f.from) >= Date.parse(f.to)) {
    throw new Problem(400, 'AUDIT_RANGE_INVALID', '`from` must be before `to`')
  }
  const eq: Array<[keyof SearchFilters, string]> = [
    ['department', 'consumer_department'], ['system', 'consumer_system'], ['region', 'consumer_region'],
    ['resource', 'resource'], ['operation', 'operation'], ['decision', 'decision'], ['reason', 'reason'],
    ['purpose', 'purpose'], ['caseId', 'case_id'], ['operator', 'operator'], ['node', 'node'],
    ['requestId', 'request_id'], ['chain', 'chain'], ['grant', 'grant_id'], ['subjectHash', 'subject'],
    ['clientRequestId', 'client_request_id'],
  ]
  for (const [k, c] of eq) if (f[k] !== undefined) cond.push(`${col(c)} = ${p(f[k])}`)
  if (f.provider !== undefined) cond.push(`${col('resource')} = ANY(${p(resolver.byProvider(f.provider))}::text[])`)
  if (f.service !== undefined) cond.push(`${col('resource')} = ANY(${p(resolver.byService(f.service))}::text[])`)
  if (f.kind) cond.push(kindCondition(f.kind, col('operation')))
  if (f.hideAuditOf !== undefined) {
    cond.push(`NOT (${col('consumer_system')} IS NOT DISTINCT FROM ${p(f.hideAuditOf)} AND ${col('operation')} IS NOT NULL AND ${kindCondition('audit', col('operation'))})`)
  }
  return { sql: cond.length ? cond.join(' AND ') : 'true', params }
}

/**
 * Kinds of records, by operation: `login` the token endpoint (failed logins are denied
 * ones), `audit` the auditor's own calls (audit.*), `admin` every other dotted operation
 * (catalog.*, application.*, grant.*, node.*, batch.*), `query` the data queries (verify,
 * query, … and requests refused before their operation was known).
 */
export function kindCondition(kind: Kind, operation = 'operation'): string {
  switch (kind) {
    case 'login':
      return `${operation} = 'token'`
    case 'audit':
      return `${operation} LIKE 'audit.%'`
    case 'admin':
      return `(${operation} LIKE '%.%' AND ${operation} NOT LIKE 'audit.%')`
    case 'query':
      return `(${operation} IS NULL OR (${operation} NOT LIKE '%.%' AND ${operation} <> 'token'))`
  }
}

const TIME_KEY = `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

export async function searchRecords(db: Db, resolver: ResourceResolver, f: SearchFilters, page: SearchPage = {}): Promise<SearchResult> {
  const limit = page.limit ?? DEFAULT_PAGE
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new Problem(400, 'AUDIT_PAGE_TOO_LARGE', `limit must be 1–${MAX_PAGE}`)
  }
  const order = page.order ?? 'desc'
  const fp = fingerprint(f, order)
  const { sql, params } = whereFor(f, resolver)
  const cond = [sql]
  if (page.cursor) {
    const c = decodeCursor(page.cursor)
    if (c.f !== fp) throw new Problem(400, 'AUDIT_CURSOR_INVALID', 'the cursor belongs to a search with other filters')
    const t = `$${params.push(c.t)}::timestamptz`
    const rest = `($${params.push(c.c)}::text, $${params.push(c.s)}::bigint, $${params.push(c.i)}::integer)`
    // The time bound alone is what the (filter, time) indexes can range over.
    cond.push(order === 'desc'
      ? `time <= ${t} AND (time < ${t} OR (chain, seq, idx) < ${rest})`
      : `time >= ${t} AND (time > ${t} OR (chain, seq, idx) > ${rest})`)
  }
  const dir = order === 'desc' ? 'DESC' : 'ASC'
  const { rows } = await db.query(
    `SELECT chain, seq, idx, leaf, record, ${TIME_KEY} AS tkey FROM audit_records
     WHERE ${cond.join(' AND ')}
     ORDER BY time ${dir}, chain ${dir}, seq ${dir}, idx ${dir}
     LIMIT ${limit + 1}`,
    params,
  )
  const more = rows.length > limit
  const items = rows.slice(0, limit)
  const last = items[items.length - 1]
  return {
    items: items.map((r) => ({ chain: r.chain, seq: Number(r.seq), idx: r.idx, leaf: r.leaf, record: r.record })),
    nextCursor: more && last ? encodeCursor({ t: last.tkey, c: last.chain, s: Number(last.seq), i: last.idx, f: fp }) : null,
    limit,
    order,
  }
}
