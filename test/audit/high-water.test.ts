// A cut tail (the newest batch and its audit_anchors rows deleted by a DBA) against the
// node's high-water mark (src/audit/high-water.ts): integrity reports it, the node records
// it, raises the alarm and refuses to seal on that chain — also after a restart — until an
// operator acknowledges; then it seals at mark + 1, never under the deleted seq; and a
// client's saved evidence of the deleted batch shows the cut in an offline bundle check.
import t from 'tap'
import { createWriteStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { Redis } from 'ioredis'
import pg from 'pg'
import { startNode, context, uniqueName, clearRedis, ROOT, PG_URL, REDIS_URL, type Harness } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { decodeEvidence, checkpointHash } from '../../src/evidence/evidence.js'
import { exportBundle, verifyBundle } from '../../src/auditor/bundle.js'
import { HighWaterStore } from '../../src/audit/high-water.js'

const stateDir = mkdtempSync(join(tmpdir(), 'tongban-hwm-'))
const dir = mkdtempSync(join(tmpdir(), 'tongban-hwm-out-'))
const schema = uniqueName('hwm')
const env = { TONGBAN_AUDIT_STATE_DIR: stateDir }

let h: Harness = await startNode({ tag: 'hwm', schema, keepSchema: true, env })
t.teardown(async () => {
  await h.close()
  const db = new pg.Pool({ connectionString: PG_URL, max: 1 })
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await db.end()
  await clearRedis(h.config.redis.prefix)
})
const chain = h.config.replicaId
const markFile = join(stateDir, `${encodeURIComponent(chain)}.json`)

// Taken before the cut: the token endpoint is audited too, so a cut node issues none.
const token = await h.token('jn-civil-affairs')
const auditorToken = await h.token('js-audit')
const verify = (n: Harness, i = 0) => n.app.inject({
  method: 'POST', url: '/v1/verify/identity',
  headers: { authorization: `Bearer ${token}`, ...context() },
  payload: { idNumber: person(i).idNumber, name: person(i).name },
})
const readyz = (n: Harness) => n.app.inject({ method: 'GET', url: '/readyz' })
const cutMetric = async (n: Harness) => {
  const text = (await n.app.inject({ method: 'GET', url: '/metrics' })).body
  const m = text.match(new RegExp(`^tongban_audit_chain_cut\\{[^}]*chain="${chain}"[^}]*\\} (\\d+)$`, 'm'))
  return m ? Number(m[1]) : null
}
const cli = (n: Harness, ...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'audit', ...args], {
  cwd: ROOT, env: { ...process.env, ...n.env }, encoding: 'utf8', timeout: 90_000,
})
async function waitFor<T>(what: string, f: () => Promise<T | null | undefined | false>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setTimeout(r, 50))
  }
}
/** As a DBA would: the append-only triggers switched off for this transaction only. */
const tamper = (sql: string) => h.query(`BEGIN; SET LOCAL session_replication_role = replica; ${sql}; COMMIT;`)

let evidenceHeader = ''
let evidenceBody = ''
let cutSeq = 0
let cutHash = ''

t.test('every released batch raises the high-water mark first (file and Redis)', async (t) => {
  for (let i = 0; i < 3; i++) t.equal((await verify(h, i)).statusCode, 200)
  const anchored = await h.app.inject({ method: 'POST', url: '/v1/audit/anchors', headers: { authorization: `Bearer ${auditorToken}` } })
  t.equal(anchored.statusCode, 201)
  // The client keeps this answer and its evidence: its batch is the newest one.
  const res = await verify(h, 4)
  t.equal(res.statusCode, 200)
  evidenceHeader = res.headers['tongban-evidence'] as string
  evidenceBody = res.body
  const ev = decodeEvidence(evidenceHeader)
  cutSeq = ev.checkpoint.seq
  cutHash = checkpointHash(ev.checkpoint)
  const [head] = await h.query('SELECT max(seq)::int AS seq FROM audit_checkpoints WHERE chain = $1', [chain])
  t.equal(head.seq, cutSeq, 'the evidence is of the newest batch')

  const mark = JSON.parse(readFileSync(markFile, 'utf8'))
  t.match(mark, { chain, seq: cutSeq, hash: cutHash }, 'the file holds the newest released checkpoint')
  const redis = new Redis(REDIS_URL, { keyPrefix: h.config.redis.prefix })
  const copy = await waitFor('the Redis copy', async () => {
    const m = JSON.parse((await redis.hget('audit:hwm', chain)) ?? 'null')
    return m?.seq === cutSeq ? m : null
  })
  t.equal(copy.hash, cutHash)
  // The Redis copy is only ever raised.
  const store = new HighWaterStore(join(dir, 'scratch'), redis)
  await store.write({ chain, seq: 1, hash: 'f'.repeat(64), time: new Date().toISOString() })
  await new Promise((r) => setTimeout(r, 200))
  t.equal(JSON.parse((await redis.hget('audit:hwm', chain))!).seq, cutSeq, 'a lower mark does not lower the Redis copy')
  await store.close()
  redis.disconnect()
})

t.test('the newest batch and its anchors deleted: integrity reports the cut', async (t) => {
  await tamper(`DELETE FROM audit_records WHERE chain = '${chain}' AND seq = ${cutSeq};
    DELETE FROM audit_checkpoints WHERE chain = '${chain}' AND seq = ${cutSeq};
    DELETE FROM audit_anchors WHERE chain = '${chain}'`)
  const r = cli(h, 'integrity', '--chain', chain, '--json')
  t.equal(r.status, 1, r.stderr)
  const report = JSON.parse(r.stdout)
  t.equal(report.ok, false)
  const f = report.failures.find((x: any) => x.kind === 'truncated')
  t.ok(f, JSON.stringify(report.failures))
  t.equal(f.seq, cutSeq)
  t.match(f.detail, /high-water mark/)
})

t.test('the running node records the cut, raises the alarm and refuses to seal', async (t) => {
  // The first batch after the deletion finds that its head is gone; then the chain is cut.
  const refused = await waitFor('a refusal naming the cut', async () => {
    const res = await verify(h)
    t.equal(res.statusCode, 503)
    return /was cut/.test(res.json().detail) ? res : null
  })
  t.equal(refused.json().code, 'AUDIT_UNAVAILABLE')
  t.match(refused.json().detail, new RegExp(`audit chain ${chain} was cut: this node signed up to #${cutSeq}, the log ends at #${cutSeq - 1}`))
  t.match(refused.json().detail, /acknowledge-cut/)
  t.notOk(refused.headers['tongban-evidence'])

  const ready = await readyz(h)
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().audit, 'cut')
  t.match(ready.json().detail, chain)
  t.equal(await cutMetric(h), 1, 'tongban_audit_chain_cut is 1')

  const alarms = await h.query(`SELECT * FROM audit_alarms WHERE chain = $1`, [chain])
  t.equal(alarms.length, 1, 'recorded once, however often it is seen')
  t.match(alarms[0], { kind: 'cut', committed_seq: String(cutSeq - 1), hwm_seq: String(cutSeq), hwm_hash: cutHash })
  t.match(JSON.parse(readFileSync(markFile, 'utf8')), { seq: cutSeq, cut: { committedSeq: cutSeq - 1 } }, 'and in the high-water file')
  const [{ n }] = await h.query('SELECT count(*)::int AS n FROM audit_checkpoints WHERE chain = $1 AND seq >= $2', [chain, cutSeq])
  t.equal(n, 0, 'nothing sealed under the deleted seq')
})

t.test('after a restart it still refuses', async (t) => {
  await h.close()
  h = await startNode({ tag: 'hwm', schema, keepSchema: true, env })
  const ready = await readyz(h)
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().audit, 'cut')
  t.equal(await cutMetric(h), 1)
  const res = await verify(h)
  t.equal(res.statusCode, 503)
  t.match(res.json().detail, /was cut/)
  const [{ n }] = await h.query('SELECT count(*)::int AS n FROM audit_checkpoints WHERE chain = $1 AND seq >= $2', [chain, cutSeq])
  t.equal(n, 0)
})

t.test('acknowledge-cut: who, when, why; then sealing resumes at the mark + 1', async (t) => {
  const noReason = cli(h, 'acknowledge-cut', '--chain', chain)
  t.equal(noReason.status, 2, 'a reason is required')
  const ack = cli(h, 'acknowledge-cut', '--chain', chain, '--reason', 'incident JN-SEC-7: batch deleted by a DBA; evidence kept by the consumer', '--by', 'ops-wang')
  t.equal(ack.status, 0, ack.stderr)
  t.match(ack.stdout, new RegExp(`seals again from #${cutSeq + 1}`))
  t.equal(cli(h, 'acknowledge-cut', '--chain', chain, '--reason', 'again').status, 1, 'nothing left to acknowledge')

  const res = await waitFor('an answer again', async () => {
    const r = await verify(h)
    return r.statusCode === 200 ? r : null
  })
  const ev = decodeEvidence(res.headers['tongban-evidence'] as string)
  t.equal(ev.checkpoint.seq, cutSeq + 1, 'the next seq after the mark, never the deleted one')
  t.equal(ev.checkpoint.prev, cutHash, 'chained onto the checkpoint that was cut')
  t.equal((await readyz(h)).statusCode, 200)
  t.equal(await cutMetric(h), 0)
  const [row] = await h.query(`SELECT acknowledged_by, reason FROM audit_alarms WHERE chain = $1 AND kind = 'cut-acknowledged'`, [chain])
  t.match(row, { acknowledged_by: 'ops-wang', reason: /JN-SEC-7/ })

  // The gap stays visible: an acknowledged cut, not a chain-gap or a false truncation.
  const on = await h.app.inject({ method: 'GET', url: `/v1/audit/integrity?all=true&chain=${chain}`, headers: { authorization: `Bearer ${auditorToken}` } })
  t.equal(on.statusCode, 200, on.body)
  const report = on.json()
  t.equal(report.ok, false)
  t.same(report.failures.map((f: any) => [f.kind, f.seq]), [['cut', cutSeq]], JSON.stringify(report.failures))
  t.match(report.failures[0].detail, /acknowledged by ops-wang/)
})

t.test('offline: a client\'s saved evidence of the deleted batch shows the cut in a bundle', async (t) => {
  const file = join(dir, 'after-cut.tongban-audit.jsonl.gz')
  await exportBundle(h.app.db, createWriteStream(file), { node: h.config.node.id, chain, certificates: [h.app.identity.certPem], caChain: [h.app.identity.caPem] })
  const r = await verifyBundle(file, { caPem: h.app.identity.caPem, evidence: [{ header: evidenceHeader, body: evidenceBody }] })
  t.equal(r.ok, false)
  const f = r.failures.find((x) => x.kind === 'truncated')
  t.ok(f, JSON.stringify(r.failures))
  t.equal(f?.seq, cutSeq)
  t.match(f?.detail, /client's evidence names checkpoint/)

  // The CLI, with only the header value the client holds (no body).
  const evFile = join(dir, 'evidence.txt')
  writeFileSync(evFile, evidenceHeader + '\n')
  const out = cli(h, 'verify', file, '--ca', join(ROOT, 'certs/ca.crt.pem'), '--evidence', `@${evFile}`, '--json')
  t.equal(out.status, 1, out.stderr)
  const rep = JSON.parse(out.stdout)
  t.ok(rep.failures.some((x: any) => x.kind === 'truncated' && x.seq === cutSeq && /was cut/.test(x.detail)), JSON.stringify(rep.failures))
  t.ok(existsSync(markFile))
})
