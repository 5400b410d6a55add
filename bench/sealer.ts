// `npm run bench:sealer`: the seal step alone — group commit, Merkle tree, one RSA signature
// per batch, one durable PostgreSQL statement per batch — driven by N concurrent callers
// that each seal a record, wait for its evidence, and seal the next. It answers "is the
// durable audit write what limits the gateway?" (docs/performance.md: it is not).
//   --seconds 4  --concurrency 8,32,128
import pg from 'pg'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import os from 'node:os'
import { spawnSync } from 'node:child_process'
import { Sealer } from '../src/audit/sealer.js'
import type { AuditRecord } from '../src/evidence/evidence.js'
import { createSigner } from '../src/pki/suites.js'
import { migrate } from '../src/stores/migrate.js'
import { ROOT, RESULTS } from './lib.js'

const { values: opt } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, concurrency: { type: 'string', default: '8,32,128' } } })
const seconds = Number(opt.seconds)
const services = spawnSync(process.execPath, [join(ROOT, 'scripts/services.mjs')], { stdio: 'inherit' })
if (services.status !== 0) process.exit(1)

const url = process.env.TONGBAN_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const schema = `bench_sealer_${process.pid}`
const admin = new pg.Client({ connectionString: url })
await admin.connect()
await migrate(url, schema)
const db = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 4 })
const signer = createSigner('RS256', readFileSync(join(ROOT, 'certs/node/320000.key.pem'), 'utf8'))
const record = (i: number): AuditRecord => ({
  requestId: `bench-${i}`, time: new Date().toISOString(), node: '320000',
  consumer: { department: '11320115MB0000012H', system: 'jn-civil-affairs', region: '320115' },
  resource: '101001/00001', operation: 'verify', purpose: 'SA-01', caseId: 'JN-2026-1000', decision: 'allowed',
  requestDigest: `sha256:${'0'.repeat(64)}`, responseDigest: `sha256:${'1'.repeat(64)}`, subject: `hmac-sha256:${'2'.repeat(64)}`,
}) as AuditRecord

const rows = []
try {
  for (const concurrency of opt.concurrency!.split(',').map(Number)) {
    const sealer = new Sealer({ db, node: '320000', chain: `bench-${concurrency}`, kid: 'bench', signer, batchMaxSize: 256, batchWindowMs: 1 })
    const latencies: number[] = []
    let batches = 0
    const until = performance.now() + seconds * 1000
    const cpu0 = process.cpuUsage()
    await Promise.all(Array.from({ length: concurrency }, async (_, k) => {
      while (performance.now() < until) {
        const t0 = performance.now()
        const e = await sealer.seal(record(k))
        latencies.push(performance.now() - t0)
        if (e.index === 0) batches++
      }
    }))
    const cpu = process.cpuUsage(cpu0)
    await sealer.close()
    latencies.sort((a, b) => a - b)
    const q = (p: number) => Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(2))
    rows.push({
      concurrency,
      'seals/s': Math.round(latencies.length / seconds),
      'p50 ms': q(0.5),
      'p99 ms': q(0.99),
      'records/batch': Number((latencies.length / Math.max(1, batches)).toFixed(1)),
      'CPU µs/seal (this process)': Math.round((cpu.user + cpu.system) / latencies.length),
    })
  }
} finally {
  await db.end()
  await admin.query(`DROP SCHEMA ${schema} CASCADE`)
  await admin.end()
}
console.table(rows)
const out = join(RESULTS, 'sealer.json')
writeFileSync(out, JSON.stringify({ when: new Date().toISOString(), loadavg: os.loadavg(), seconds, rows }, null, 2))
console.log(`results in ${out}`)
