// GET /v1/overview on a large synthetic audit (issue 15): N sealed records (dev/synthetic-audit.ts)
// spread over D days up to now across 24 departments, then the overview timed through the
// route, for one department and for an auditor (all departments).
//
//   node --import tsx bench/overview.ts [--records 500000 --days 30 --rounds 20]
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { startNode, ROOT } from '../test/helpers/harness.js'
import { backdatedSigner, insertBatches, makeBatch, syntheticRecord } from '../dev/synthetic-audit.js'
import { GENESIS } from '../src/audit/store.js'

const { values } = parseArgs({ options: { records: { type: 'string', default: '500000' }, days: { type: 'string', default: '30' }, rounds: { type: 'string', default: '20' } } })
const N = Number(values.records)
const DAYS = Number(values.days)
const ROUNDS = Number(values.rounds)
const log = (m: string) => process.stderr.write(`[bench:overview] ${m}\n`)

const h = await startNode({ tag: 'benchov' })
await h.app.auditRollup.stop()
try {
  const node = h.config.node.id
  const signer = await backdatedSigner(h.app.db, { caCertPem: h.app.identity.caPem, caKeyPem: readFileSync(join(ROOT, 'certs/ca.key.pem'), 'utf8'), nodeId: node, validFromDaysAgo: DAYS + 10 })
  const end = Date.now() - 1000
  const start = end - DAYS * 86400_000
  await h.query('SELECT ensure_audit_partitions($1, $2)', [new Date(start), Math.ceil(DAYS / 28) + 1])
  const depts = Array.from({ length: 24 }, (_, i) => ({ department: `11320${String(100 + i * 4).padStart(3, '0')}MB${String(i).padStart(7, '0')}X`, system: `sys-${i}`, region: '320000' }))
  depts[0] = { department: '11320115MB0000012H', system: 'jn-civil-affairs', region: '320115' }
  const reasons = ['POLICY_NO_GRANT', 'QUOTA_EXCEEDED', 'POLICY_PURPOSE_NOT_GRANTED']
  const loader = new pg.Pool({ connectionString: h.env.TONGBAN_PG_URL, options: `-c search_path=${h.schema}`, max: 2 })
  const t0 = performance.now()
  let prev = GENESIS
  let seq = 0
  for (let n = 0; n < N; n += 256 * 16) {
    const chunk = []
    for (let b = 0; b < 16 && n + b * 256 < N; b++) {
      const records = Array.from({ length: Math.min(256, N - n - b * 256) }, (_, i) => {
        const k = n + b * 256 + i
        return syntheticRecord(node, {
          time: new Date(start + Math.floor((k * (end - start)) / N)),
          consumer: depts[k % depts.length], resource: '101001/00001', operation: 'verify', purpose: 'SA-01',
          ...(k % 13 === 0 ? { decision: 'denied' as const, reason: reasons[k % reasons.length] } : {}),
        })
      })
      const batch = makeBatch({ chain: 'bench', node, signer, records, seq: ++seq, prev })
      prev = batch.hash
      chunk.push(batch)
    }
    await insertBatches(loader, chunk)
  }
  await loader.end()
  await h.query('ANALYZE audit_records')
  log(`${N} records over ${DAYS} days loaded in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
  const [{ today }] = await h.query(`SELECT count(*)::int AS today FROM audit_records WHERE time >= date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai'`)
  const timed = async (name: string, token: string) => {
    const ms: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now()
      const res = await h.app.inject({ method: 'GET', url: '/v1/overview', headers: { authorization: `Bearer ${token}` } })
      ms.push(performance.now() - t)
      if (res.statusCode !== 200) throw new Error(`${name}: ${res.statusCode} ${res.body}`)
    }
    ms.sort((a, b) => a - b)
    log(`${name}: p50 ${ms[Math.floor(ROUNDS / 2)].toFixed(1)} ms, p95 ${ms[Math.min(ROUNDS - 1, Math.floor(ROUNDS * 0.95))].toFixed(1)} ms (${today} records today)`)
  }
  await timed('overview, one department', await h.token('jn-civil-affairs'))
  await timed('overview, auditor (all departments)', await h.token('js-audit'))
} finally {
  await h.close()
}
