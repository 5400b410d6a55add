// Append-only at the database too: the gateway's role (tongban_gateway) may read and append
// audit rows but never change them; the owner is stopped by the triggers; retention removes
// whole monthly partitions only after a verified export, keeps the checkpoints (so the chain
// stays whole), records what it did, and seals an admin record of it.
import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { startNode, PG_URL, ROOT } from '../helpers/harness.js'
import { createSigner } from '../../src/pki/suites.js'
import { backdatedSigner, makeBatch, sealSynthetic, syntheticRecord } from '../../dev/synthetic-audit.js'
import { readHead, writeBatch } from '../../src/audit/store.js'
import { runRetention, retentionPlan } from '../../src/auditor/retention.js'
import { verifyBundle } from '../../src/auditor/bundle.js'
import { verifyDatabase } from '../../src/auditor/integrity.js'
import { cliSealer } from '../../src/cli/audit.js'

const h = await startNode({ tag: 'auddb' })
t.teardown(() => h.close())
const { identity } = h.app
const node = h.config.node.id
const signer = { ...createSigner('RS256', identity.keyPem), kid: identity.kid }

/** A connection acting as the gateway's database role. */
async function asGateway() {
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${h.schema}` })
  await c.connect()
  await c.query('SET ROLE tongban_gateway')
  return c
}

t.test('the gateway role appends and reads, but cannot UPDATE, DELETE, TRUNCATE or drop', async (t) => {
  await sealSynthetic(h.app.db, { chain: 'seed', node, signer, records: [syntheticRecord(node, { time: new Date() })] })
  const c = await asGateway()
  t.teardown(() => c.end())
  // The sealer's own statement works under the role.
  const head = await readHead(c as unknown as pg.Pool, 'as-gateway')
  await writeBatch(c as unknown as pg.Pool, makeBatch({ chain: 'as-gateway', node, signer, seq: head.seq + 1, prev: head.hash, records: [syntheticRecord(node, { time: new Date() })] }))
  const { rows } = await c.query("SELECT count(*)::int AS n FROM audit_records WHERE chain = 'as-gateway'")
  t.equal(rows[0].n, 1, 'INSERT and SELECT are granted')
  await c.query("INSERT INTO audit_anchors (chain, seq, hash, anchored_by) VALUES ('as-gateway', 1, 'x', 'test')")

  const refused: Array<[string, RegExp]> = [
    ["UPDATE audit_records SET decision = 'allowed'", /permission denied/],
    ['DELETE FROM audit_records', /permission denied/],
    ['TRUNCATE audit_records', /permission denied/],
    ["UPDATE audit_checkpoints SET sig = 'x'", /permission denied/],
    ['DELETE FROM audit_checkpoints', /permission denied/],
    ['DELETE FROM audit_anchors', /permission denied/],
    ['DELETE FROM audit_retention', /permission denied/],
    ['DROP TABLE audit_records', /must be owner|permission denied/],
    ['ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only', /must be owner|permission denied/],
  ]
  const { rows: parts } = await c.query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_records'::regclass AND c.relname <> 'audit_records_default' LIMIT 1")
  refused.push([`DELETE FROM ${parts[0].relname}`, /permission denied/], ['DELETE FROM audit_records_default', /permission denied/])
  for (const [sql, re] of refused) {
    await t.rejects(c.query(sql), re, sql)
  }
  // Ordinary tables stay writable for the gateway.
  await c.query("UPDATE systems SET updated_at = updated_at WHERE client_id = 'js-audit'")
})

t.test('the owner (and a superuser) is stopped by the append-only triggers', async (t) => {
  await t.rejects(h.query("UPDATE audit_records SET decision = 'denied'"), /append-only/)
  await t.rejects(h.query('DELETE FROM audit_records'), /append-only/)
  await t.rejects(h.query('TRUNCATE audit_records'), /append-only/)
  await t.rejects(h.query("UPDATE audit_checkpoints SET sig = 'x'"), /append-only/)
  await t.rejects(h.query('DELETE FROM audit_anchors'), /append-only/)
})

t.test('retention: export, verify, record, drop whole old partitions; the chain stays verifiable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-retention-'))
  // Four months back and three months back, then now: batches on one chain.
  const month = (back: number) => {
    const d = new Date()
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 10, 8))
  }
  await h.query('SELECT ensure_audit_partitions($1, 2)', [month(4)])
  // History signed by a (rotated) certificate that was valid back then.
  const old = await backdatedSigner(h.app.db, {
    caCertPem: identity.caPem, caKeyPem: readFileSync(join(ROOT, 'certs/ca.key.pem'), 'utf8'), nodeId: node, validFromDaysAgo: 200,
  })
  const ym = (d: Date) => d.toISOString().slice(0, 7)
  const three = async (time: Date, i: number) => {
    const records = Array.from({ length: 3 }, (_, k) => syntheticRecord(node, { time: new Date(time.getTime() + i * 1000 + k), caseId: `RET-${i}-${k}` }))
    await sealSynthetic(h.app.db, { chain: 'history', node, signer: old, records })
  }
  await three(month(4), 0)
  await three(month(4), 1)
  await three(month(3), 2)
  // A batch that straddles the boundary: a record at the very end of month -3 and one in month -2.
  const edge = new Date(Date.UTC(month(2).getUTCFullYear(), month(2).getUTCMonth(), 1) - 1)
  await sealSynthetic(h.app.db, { chain: 'history', node, signer: old, records: [syntheticRecord(node, { time: edge }), syntheticRecord(node, { time: new Date(edge.getTime() + 2) })] })
  await three(new Date(Date.now() - 10_000), 3)

  const before = ym(month(2))
  const plan = await retentionPlan(h.app.db, before)
  t.same(plan.map((p) => p.partition), [`audit_records_${ym(month(4)).replace('-', '')}`, `audit_records_${ym(month(3)).replace('-', '')}`])
  t.same(plan.map((p) => p.records), [6, 4])

  await t.rejects(retentionPlan(h.app.db, '2026-13'), /must be a month/)

  const done = await runRetention(h.app.db, {
    before, exportDir: dir, node, caPem: identity.caPem, certificates: [identity.certPem], actor: 'test-operator',
    seal: cliSealer(h.config, h.app.db, 'test-operator'),
  })
  t.equal(done.length, 2)
  for (const d of done) {
    const r = await verifyBundle(d.bundleFile, { caPem: identity.caPem })
    t.equal(r.ok, true, `${d.bundleFile} verifies offline`)
    const [row] = await h.query('SELECT to_regclass($1) AS t', [d.partition])
    t.equal(row.t, null, `${d.partition} is gone`)
  }
  const last = await verifyBundle(done[1].bundleFile, { caPem: identity.caPem })
  t.equal(last.records, 5, 'whole batches: the straddling batch is exported entirely')

  const rows = await h.query('SELECT partition, records, through, bundle_sha256, done_by FROM audit_retention ORDER BY id')
  t.equal(rows.length, 2)
  t.same(rows[1].through, { history: 4 })
  t.equal(rows[0].done_by, 'test-operator')

  const sealed = await h.query("SELECT record FROM audit_records WHERE operation = 'audit.retention' ORDER BY time")
  t.equal(sealed.length, 2, 'each removal is a sealed admin record')
  t.equal(sealed[0].record.resource, done[0].partition)
  t.equal(sealed[0].record.responseDigest, `sha256:${done[0].bundleSha256}`, 'the record binds the exported file')

  // Checkpoints are kept: the chain verifies, retained batches are counted, not failed.
  const report = await verifyDatabase(h.app.db, { chain: 'history', caPem: identity.caPem, certificates: [identity.certPem] })
  t.equal(report.ok, true, JSON.stringify(report.firstFailure))
  t.equal(report.retainedBatches, 4)
  t.equal(report.records, 3, 'the batch from this month is verified record by record')
  await t.rejects(h.query('DELETE FROM audit_retention'), /append-only/)

  // Nothing left to do; an unexported partition is never dropped without export.
  t.same(await retentionPlan(h.app.db, before), [])
})
