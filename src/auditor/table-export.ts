// A search's results as a table (CSV or XLSX) for the workbench: the same filters and order
// as GET /v1/audit/records, read page by page (keyset), streamed, bounded. Headers are
// Chinese first, English after; codes come with their words. The subject is left out: the
// table is handed on, and the keyed hash says nothing to its reader anyway.
import { PassThrough, Readable } from 'node:stream'
import ExcelJS from 'exceljs'
import { PROBLEM_CODES } from '../problems/codes.js'
import type { Db } from '../stores/postgres.js'
import { searchRecords, whereFor, MAX_PAGE, type ResourceResolver, type SearchFilters, type SearchHit } from './search.js'
import type { ReportNames } from './subject-report.js'

export const TABLE_EXPORT_MAX_ROWS = 50_000

const COLUMNS: Array<[zh: string, en: string]> = [
  ['时间', 'time'], ['请求标识', 'request id'], ['节点', 'node'], ['使用部门代码', 'consumer department'], ['使用部门', 'department name'],
  ['系统', 'system'], ['资源代码', 'resource'], ['资源名称', 'resource name'], ['操作', 'operation'], ['事由', 'purpose'],
  ['办件编号', 'case id'], ['经办人', 'operator'], ['结果', 'decision'], ['原因代码', 'reason code'], ['原因', 'reason'],
]
export const HEADERS = COLUMNS.map(([zh, en]) => `${zh} ${en}`)

const DECISION_ZH: Record<string, string> = { allowed: '允许 allowed', denied: '拒绝 denied', failed: '失败 failed' }

function rowOf(h: SearchHit, names: ReportNames): string[] {
  const r = h.record
  const reason = r.reason && Object.prototype.hasOwnProperty.call(PROBLEM_CODES, r.reason) ? PROBLEM_CODES[r.reason as keyof typeof PROBLEM_CODES].zh : ''
  const dept = r.consumer?.department ?? ''
  const operator = typeof r.operator === 'string' ? r.operator : r.operator ? JSON.stringify(r.operator) : ''
  return [
    r.time, r.requestId, r.node, dept, (dept && names.department(dept)) || '', r.consumer?.system ?? '',
    r.resource ?? '', (r.resource && names.resource(r.resource)) || '', r.operation ?? '', r.purpose ?? '',
    r.caseId ?? '', operator, DECISION_ZH[r.decision] ?? r.decision, r.reason ?? '', reason,
  ]
}

export class TableTooLargeError extends Error {}

/** The rows of the search, page by page; throws TableTooLargeError before the first row if over the bound. */
async function* rows(db: Db, resolver: ResourceResolver, f: SearchFilters, order: 'asc' | 'desc', names: ReportNames): AsyncGenerator<string[]> {
  let cursor: string | undefined
  let n = 0
  do {
    const page = await searchRecords(db, resolver, f, { limit: MAX_PAGE, cursor, order })
    for (const hit of page.items) {
      if (++n > TABLE_EXPORT_MAX_ROWS) throw new TableTooLargeError(`more than ${TABLE_EXPORT_MAX_ROWS} records`)
      yield rowOf(hit, names)
    }
    cursor = page.nextCursor ?? undefined
  } while (cursor)
}

/** Counts without reading the records: the bound is checked before anything is sent. */
export async function countOver(db: Db, resolver: ResourceResolver, f: SearchFilters): Promise<boolean> {
  const { sql, params } = whereFor(f, resolver)
  const { rows: r } = await db.query(`SELECT count(*)::int AS n FROM (SELECT 1 FROM audit_records WHERE ${sql} LIMIT ${TABLE_EXPORT_MAX_ROWS + 1}) x`, params)
  return r[0].n > TABLE_EXPORT_MAX_ROWS
}

const csvCell = (v: string) => {
  // Spreadsheet formula injection: a cell starting with = + - @ is read as text.
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}

export function csvStream(db: Db, resolver: ResourceResolver, f: SearchFilters, order: 'asc' | 'desc', names: ReportNames): Readable {
  return Readable.from((async function* () {
    // The BOM: spreadsheet programs then read the Chinese as UTF-8.
    yield `\uFEFF${HEADERS.map(csvCell).join(',')}\r\n`
    for await (const r of rows(db, resolver, f, order, names)) yield `${r.map(csvCell).join(',')}\r\n`
  })())
}

export function xlsxStream(db: Db, resolver: ResourceResolver, f: SearchFilters, order: 'asc' | 'desc', names: ReportNames): Readable {
  const out = new PassThrough()
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useSharedStrings: false, useStyles: false })
  const ws = wb.addWorksheet('审计记录 audit records')
  ;(async () => {
    ws.addRow(HEADERS).commit()
    for await (const r of rows(db, resolver, f, order, names)) ws.addRow(r).commit()
    ws.commit()
    await wb.commit()
  })().catch((e) => out.destroy(e))
  return out
}
