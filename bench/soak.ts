// A soak: the gateway process under moderate, steady load for a long time (default 10
// minutes), its heap (after a forced GC, read from inside the process by the probe the
// fault tests use) and RSS sampled every 30 s. Not part of CI.
//   node --import tsx bench/soak.ts [--minutes 10] [--rate 400] [--connections 16]
//     [--scenario identity|conditional]  (conditional: a resource under a grant and its quota)
// Prints the samples and a verdict (heap and RSS growth between the second sample and the
// last), and writes bench/results/soak.json (soak-conditional.json for that scenario).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startNode, context } from '../test/helpers/harness.js'
import { startGateway } from '../test/faults/helpers.js'
import { memory, RESULTS, cpuSeconds, paced } from './lib.js'
import { samplePersons } from '../dev/providers/population.js'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '400' },
    connections: { type: 'string', default: '16' },
    every: { type: 'string', default: '30' },
    scenario: { type: 'string', default: 'identity' },
  },
})
const minutes = Number(values.minutes)
const rate = Number(values.rate)
const every = Number(values.every) * 1000

// Tokens live an hour here: the soak outlasts the default ten minutes.
const h = await startNode({ tag: 'soak', env: { TONGBAN_RATE_LIMIT: '1000000', TONGBAN_TOKEN_TTL: '3600' } })
const token = await h.token('jn-civil-affairs')
const path = values.scenario === 'conditional' ? `/v1/resources/${encodeURIComponent('103002/00002')}/query` : '/v1/verify/identity'
if (values.scenario === 'conditional') {
  // A grant for the real-estate registry, approved by its provider, with room for the soak.
  const nr = await h.token('js-natural-resources')
  const applied = await h.app.inject({
    method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${token}` },
    payload: { resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: 'soak', validTo: new Date(Date.now() + 86400_000).toISOString(), dailyQuota: 1_000_000 },
  })
  if (applied.statusCode >= 300) throw new Error(`application refused: ${applied.body}`)
  const decided = await h.app.inject({ method: 'POST', url: `/v1/applications/${applied.json().id}/decision`, headers: { authorization: `Bearer ${nr}` }, payload: { decision: 'approve' } })
  if (decided.statusCode !== 200) throw new Error(`grant not approved: ${decided.body}`)
}
const gw = await startGateway(h, 'soak', { TONGBAN_LOG_LEVEL: 'info' })
const people = samplePersons(200)
let i = 0

const started = Date.now()
const samples: object[] = []
let cpu0 = cpuSeconds(gw.child.pid!)
const sample = async (requests: number) => {
  const p = await gw.probe()
  const m = memory(gw.child.pid!)
  const cpu = cpuSeconds(gw.child.pid!)
  const s = { atS: Math.round((Date.now() - started) / 1000), requests, heapUsedMiB: p.heapUsedMiB, rssMiB: m.rssMiB, peakRssMiB: m.peakRssMiB, handles: p.handles, sockets: p.sockets, cpuPct: Math.round((100 * (cpu - cpu0)) / (every / 1000)) }
  cpu0 = cpu
  samples.push(s)
  console.log(JSON.stringify(s))
}

let total = 0
const codes: Record<string, number> = {}
// Evenly spaced (bench/lib.ts `paced`): autocannon's overallRate sends each second's share
// in a burst and then idles, which is not the steady load a soak means.
const run = paced({
  url: `${gw.base}${path}`,
  connections: Number(values.connections),
  rate,
  durationS: minutes * 60,
  body: '',
  bodyFor: () => {
    const p = people[i++ % people.length]
    return JSON.stringify({ idNumber: p.idNumber, name: p.name })
  },
  headers: { authorization: `Bearer ${token}`, ...context() },
  onAnswer: (status) => {
    total++
    codes[status] = (codes[status] ?? 0) + 1
  },
})
await sample(0)
const timer = setInterval(() => void sample(total), every)
const result = await run
clearInterval(timer)
await sample(total)

const [{ n }] = await h.query("SELECT count(*)::int AS n FROM audit_records WHERE chain = $1 AND decision = 'allowed'", [gw.chain])
const first = samples[1] as any
const last = samples[samples.length - 1] as any
const summary = {
  at: new Date().toISOString(),
  scenario: values.scenario, minutes, rate, connections: Number(values.connections),
  requests: total, statusCodes: codes, p50: result.p50, p99: result.p99,
  auditAllowed: n, auditLoss: Math.max(0, (codes[200] ?? 0) - n),
  heapGrowthMiB: +(last.heapUsedMiB - first.heapUsedMiB).toFixed(2),
  rssGrowthMiB: +(last.rssMiB - first.rssMiB).toFixed(1),
  samples,
}
console.log(JSON.stringify({ ...summary, samples: undefined }, null, 2))
mkdirSync(RESULTS, { recursive: true })
writeFileSync(join(RESULTS, values.scenario === 'identity' ? 'soak.json' : `soak-${values.scenario}.json`), JSON.stringify(summary, null, 2) + '\n')
await gw.stop()
await h.close()
process.exit(0)
