// The authorize step on its own (issue: sharing rules, "measure and report"): its added
// latency at p50/p99 and the Redis round trips one query costs, on the real Redis.
//   node --import tsx bench/policy-step.ts [--n 20000]
// Prints a table and writes bench/results/policy-step.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { startNode } from '../test/helpers/harness.js'
import type { Principal } from '../src/auth/principal.js'

const { values } = parseArgs({ options: { n: { type: 'string', default: '20000' } } })
const N = Number(values.n)

const h = await startNode({ tag: 'benchpolicy', env: { TONGBAN_RATE_LIMIT: '0' } })
const token = { jn: await h.token('jn-civil-affairs'), nr: await h.token('js-natural-resources') }
const api = (t: string, method: 'POST', url: string, payload: object) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${t}` }, payload })
const applied = await api(token.jn, 'POST', '/v1/applications', {
  resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: 'benchmark', validTo: new Date(Date.now() + 86400_000).toISOString(), dailyQuota: 1_000_000,
})
await api(token.nr, 'POST', `/v1/applications/${applied.json().id}/decision`, { decision: 'approve' })
await h.app.grants.load()

const principal: Principal = { system: 'jn-civil-affairs', department: '11320115MB0000012H', region: '320115', tier: 'county', roles: ['consumer'] }
const unconditional = h.app.catalog.get('101001/00001')!
const conditional = h.app.catalog.get('103002/00002')!
const stats = new Redis(h.config.redis.url)
// Round trips are the commands the gateway sends (EVALSHA); the commands its script runs
// inside Redis are counted separately.
const commandCounts = async () => {
  const info = await stats.info('commandstats')
  let trips = 0
  let all = 0
  for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
    all += Number(m[2])
    if (m[1] === 'evalsha' || m[1] === 'eval') trips += Number(m[2])
  }
  return { trips, all }
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]
async function measure(name: string, fn: () => Promise<unknown>, concurrency: number) {
  for (let i = 0; i < 500; i++) await fn() // warm up
  const before = await commandCounts()
  const times: number[] = []
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < N) {
      const t0 = performance.now()
      await fn()
      times.push(performance.now() - t0)
    }
  }))
  const wall = performance.now() - started
  const after = await commandCounts()
  // The INFO call itself is one command: not counted against the queries.
  const commands = after.all - before.all - 1
  const trips = after.trips - before.trips
  times.sort((a, b) => a - b)
  return { name, concurrency, n: N, p50ms: +pct(times, 50).toFixed(3), p99ms: +pct(times, 99).toFixed(3), perSecond: Math.round(N / (wall / 1000)), redisRoundTripsPerQuery: +(trips / N).toFixed(3), redisCommandsPerQuery: +(commands / N).toFixed(3) }
}

// Rate limiting is switched off here (TONGBAN_RATE_LIMIT=0) for the unconditional case so it
// shows the no-Redis path; the default configuration adds the same single script call.
const rows = []
for (const c of [1, 32]) {
  rows.push(await measure('unconditional (no rate limit)', () => h.app.policy.authorize(unconditional, principal, 'SA-01'), c))
  rows.push(await measure('conditional with grant + quota', () => h.app.policy.authorize(conditional, principal, 'SA-01'), c))
}
console.table(rows)
mkdirSync('bench/results', { recursive: true })
writeFileSync('bench/results/policy-step.json', JSON.stringify({ at: new Date().toISOString(), node: process.version, rows }, null, 2) + '\n')
stats.disconnect()
await h.close()
