// What the high-water mark adds to each audit batch (src/audit/high-water.ts): one atomic,
// fsync'd replacement of the chain's file (temp + fsync + rename + fsync of the directory),
// which release waits for, and the Redis raise, which it does not.
//   npx tsx bench/high-water.ts [--n 500] [--dir certs/audit-hwm-bench]
import { mkdtempSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { HighWaterStore } from '../src/audit/high-water.js'

const { values } = parseArgs({ options: { n: { type: 'string', default: '500' }, dir: { type: 'string' } } })
const n = Number(values.n)
const base = values.dir ? resolve(values.dir) : resolve('certs')
const dir = mkdtempSync(join(base, 'audit-hwm-bench-'))
const redis = new Redis(process.env.TONGBAN_REDIS_URL ?? 'redis://127.0.0.1:6379', { keyPrefix: `bench-hwm-${process.pid}:` })
const store = new HighWaterStore(dir, redis)
const hash = 'a'.repeat(64)

const ms: number[] = []
for (let seq = 1; seq <= n; seq++) {
  const t0 = performance.now()
  await store.write({ chain: 'bench-r1', seq, hash, time: new Date().toISOString() })
  ms.push(performance.now() - t0)
}
ms.sort((a, b) => a - b)
const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(3)
console.log(`high-water mark, ${n} writes in ${dir}: median ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms per batch`)
await store.close()
await redis.del('audit:hwm')
redis.disconnect()
rmSync(dir, { recursive: true, force: true })
