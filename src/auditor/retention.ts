// Retention (issue 5, item 3): whole monthly partitions of audit_records are removed, and
// only after they were exported to a bundle that verified. Checkpoints stay (they hold no
// personal data), so the hash chain stays whole; audit_retention says which batches' records
// are now in which bundle (by file and SHA-256), and a sealed admin record
// (operation `audit.retention`) says who did it and binds the bundle's digest.
//
// Runs as the owner role (DDL); the gateway's role cannot detach or drop partitions.
import { createWriteStream, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Db } from '../stores/postgres.js'
import { exportBundle, rangesFor, verifyBundle } from './bundle.js'

export interface RetentionPlanItem {
  partition: string
  from: Date
  to: Date
  records: number
}

export interface RetentionDone extends RetentionPlanItem {
  bundleFile: string
  bundleSha256: string
  through: Record<string, number>
}

export class RetentionRefused extends Error {}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/

export function monthStart(month: string): Date {
  const m = MONTH.exec(month)
  if (!m) throw new RetentionRefused(`--before must be a month, YYYY-MM (got ${JSON.stringify(month)})`)
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1))
}

/** Monthly partitions entirely before `before` (YYYY-MM), oldest first. */
export async function retentionPlan(db: Db, before: string): Promise<RetentionPlanItem[]> {
  const boundary = monthStart(before)
  const { rows: def } = await db.query('SELECT count(*)::int AS n FROM audit_records_default WHERE time < $1', [boundary])
  if (def[0].n > 0) {
    throw new RetentionRefused(`${def[0].n} records before ${before} are in the default partition; create their monthly partitions (and move them) first`)
  }
  const { rows } = await db.query(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'audit_records'::regclass AND c.relname ~ '^audit_records_[0-9]{6}$' ORDER BY c.relname`,
  )
  const plan: RetentionPlanItem[] = []
  for (const r of rows) {
    const y = Number(r.name.slice(-6, -2))
    const m = Number(r.name.slice(-2))
    const from = new Date(Date.UTC(y, m - 1, 1))
    const to = new Date(Date.UTC(y, m, 1))
    if (to > boundary) continue
    const { rows: n } = await db.query(`SELECT count(*)::int AS n FROM ${r.name}`)
    plan.push({ partition: r.name, from, to, records: n[0].n })
  }
  return plan
}

export interface RetentionOptions {
  before: string
  exportDir: string
  node: string
  caPem: string
  certificates: string[]
  actor: string
  /** Seals the admin record of one removal (the CLI passes a sealer). */
  seal(done: RetentionDone): Promise<void>
  log?: (m: string) => void
}

export async function runRetention(db: Db, o: RetentionOptions): Promise<RetentionDone[]> {
  const log = o.log ?? (() => {})
  const plan = await retentionPlan(db, o.before)
  mkdirSync(o.exportDir, { recursive: true })
  const done: RetentionDone[] = []
  for (const p of plan) {
    // Whole batches: a batch with any record in the month goes into the bundle entirely.
    const ranges = await rangesFor(db, { from: p.from, to: p.to, by: 'record-time' })
    const file = join(o.exportDir, `audit-${o.node}-${p.partition.slice(-6)}.tongban-audit.jsonl.gz`)
    const out = createWriteStream(file, { flags: 'wx' })
    const exported = await exportBundle(db, out, { node: o.node, ranges, certificates: o.certificates, caChain: [o.caPem] })
    const check = await verifyBundle(file, { caPem: o.caPem })
    if (!check.ok) {
      throw new RetentionRefused(`the export of ${p.partition} does not verify (${check.firstFailure?.kind}: ${check.firstFailure?.detail}); nothing was removed`)
    }
    const through = Object.fromEntries(ranges.map((r) => [r.chain, r.lastSeq]))
    const client = await db.connect()
    try {
      await client.query('BEGIN')
      await client.query(
        `INSERT INTO audit_retention (partition, range_from, range_to, records, through, bundle_file, bundle_sha256, done_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [p.partition, p.from, p.to, p.records, JSON.stringify(through), file, exported.sha256, o.actor],
      )
      await client.query(`ALTER TABLE audit_records DETACH PARTITION ${p.partition}`)
      await client.query(`DROP TABLE ${p.partition}`)
      await client.query('COMMIT')
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      client.release()
    }
    const d: RetentionDone = { ...p, bundleFile: file, bundleSha256: exported.sha256, through }
    await o.seal(d)
    log(`removed ${p.partition} (${p.records} records) after exporting ${exported.records} records in ${exported.checkpoints} batches to ${file}`)
    done.push(d)
  }
  return done
}
