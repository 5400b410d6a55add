// Bulk verification against the same service called one by one, and the SDK's own cost
// per call. One gateway process (src/server.ts, batch worker on) in front of the simulated
// identity provider; this process drives it. Rounds alternate so that both sides of each
// comparison see the same machine load; quote the ratios (PERFORMANCE.md).
//
//   npm run bench:batch [-- --items 5000 --concurrency 16 --calls 400 --rounds 2]
//
// Writes bench/results/batch.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { startNode, context, ROOT } from '../test/helpers/harness.js'
import { spawnGateway } from '../test/helpers/gateway-process.js'
import { samplePersons } from '../dev/providers/population.js'
import { DEV_P12_PASSWORD } from '../dev/pki.js'
import { TongbanClient } from '../packages/client/src/index.js'

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '16' },
    calls: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '2' },
  },
})
const ITEMS = Number(values.items)
const CONCURRENCY = Number(values.concurrency)
const CALLS = Number(values.calls)
const ROUNDS = Number(values.rounds)

const log = (m: string) => console.log(`[bench:batch] ${m}`)
const people = samplePersons(5000)
const item = (i: number) => ({ idNumber: people[i % people.length].idNumber, name: people[i % people.length].name })

// No per-system rate limit and no batch rate cap: raw throughput is what is measured.
const h = await startNode({ tag: 'benchbatch', env: { TONGBAN_BATCH_WORKER: '0', TONGBAN_RATE_LIMIT: '0' } })
const gw = await spawnGateway(h, 'bench', {
  TONGBAN_BATCH_WORKER: '1',
  TONGBAN_RATE_LIMIT: '0',
  TONGBAN_BATCH_UPSTREAM_RATE: '0',
  TONGBAN_BATCH_UPSTREAM_CONCURRENCY: '32',
  TONGBAN_BATCH_JOB_CONCURRENCY: '4',
  TONGBAN_LOG_LEVEL: 'error',
})
const p12 = readFileSync(join(ROOT, 'certs/clients/jn-civil-affairs.p12'))
const client = (verifyEvidence = true) =>
  new TongbanClient({ baseUrl: gw.base, credential: { p12, password: DEV_P12_PASSWORD }, context: { purpose: 'SA-01', caseId: 'JN-BENCH-1' }, verifyEvidence })
const sdk = client()
const sdkNoVerify = client(false)
await sdk.token()
await sdkNoVerify.token()
await sdk.node()

async function oneByOne(n: number, concurrency: number): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++
        const a = await sdk.verify.identity(item(i))
        if (!a.data.match) throw new Error('unexpected no-match')
      }
    }),
  )
  return n / ((performance.now() - started) / 1000)
}

async function bulk(n: number): Promise<{ rate: number; submitMs: number }> {
  const started = performance.now()
  const b = await sdk.batches.submit({ service: 'identity' }, Array.from({ length: n }, (_, i) => item(i)))
  const submitMs = performance.now() - started
  const end = await sdk.batches.wait(b.id, { intervalMs: 100 })
  if (end.succeeded !== n) throw new Error(`batch: ${JSON.stringify(end)}`)
  return { rate: n / ((performance.now() - started) / 1000), submitMs }
}

// SDK overhead: sequential calls, the raw HTTP exchange (pre-fetched token, no checks)
// against the SDK with and without evidence verification.
const raw = new Pool(gw.base, { connections: 4 })
const token = await sdk.token()
async function rawCall(i: number) {
  const res = await raw.request({
    path: '/v1/verify/identity',
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...context() },
    body: JSON.stringify(item(i)),
  })
  const body = await res.body.json()
  if (res.statusCode !== 200 || !(body as { match: boolean }).match) throw new Error(`raw: ${res.statusCode}`)
}
/** Calls interleaved (raw, SDK, SDK without evidence check, …) so all three see the same load. */
async function interleaved(n: number): Promise<{ raw: number[]; sdk: number[]; sdkNoVerify: number[] }> {
  const out = { raw: [] as number[], sdk: [] as number[], sdkNoVerify: [] as number[] }
  const time = async (into: number[], f: () => Promise<unknown>) => {
    const t0 = performance.now()
    await f()
    into.push((performance.now() - t0) * 1000)
  }
  for (let i = 0; i < n; i++) {
    await time(out.raw, () => rawCall(i))
    await time(out.sdk, () => sdk.verify.identity(item(i)))
    await time(out.sdkNoVerify, () => sdkNoVerify.verify.identity(item(i)))
  }
  return out
}

/** The SDK's own CPU per answer, without the network: checking one evidence header. */
async function evidenceCheckUs(n: number): Promise<number> {
  const a = await sdk.verify.identity(item(0))
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await sdk.checkEvidence(a.evidenceHeader, a.body)
  return ((performance.now() - t0) * 1000) / n
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

// Warm-up: connections, JIT, caches.
await oneByOne(200, CONCURRENCY)
await bulk(500)
await interleaved(50)

const rows: Array<Record<string, number>> = []
for (let r = 1; r <= ROUNDS; r++) {
  const seq1 = await oneByOne(Math.min(ITEMS, 1000), 1)
  const single = await oneByOne(ITEMS, CONCURRENCY)
  const b = await bulk(ITEMS)
  const { raw: rawT, sdk: sdkT, sdkNoVerify: sdkNvT } = await interleaved(CALLS)
  const checkUs = await evidenceCheckUs(500)
  const row = {
    round: r,
    oneByOneSequentialPerS: Math.round(seq1),
    oneByOneConcurrentPerS: Math.round(single),
    bulkPerS: Math.round(b.rate),
    bulkSubmitMs: Math.round(b.submitMs),
    rawMedianUs: Math.round(median(rawT)),
    sdkMedianUs: Math.round(median(sdkT)),
    sdkNoVerifyMedianUs: Math.round(median(sdkNvT)),
    rawMeanUs: Math.round(mean(rawT)),
    sdkMeanUs: Math.round(mean(sdkT)),
    sdkNoVerifyMeanUs: Math.round(mean(sdkNvT)),
    evidenceCheckCpuUs: Math.round(checkUs),
  }
  rows.push(row)
  log(
    `round ${r}: one by one ${row.oneByOneSequentialPerS}/s sequential, ${row.oneByOneConcurrentPerS}/s at concurrency ${CONCURRENCY}; ` +
      `bulk ${row.bulkPerS}/s (${ITEMS} items, submit ${row.bulkSubmitMs} ms); ` +
      `per call median raw ${row.rawMedianUs} µs, SDK ${row.sdkMedianUs} µs (${row.sdkNoVerifyMedianUs} µs without evidence check); ` +
      `evidence check ${row.evidenceCheckCpuUs} µs CPU`,
  )
}

const avg = (k: string) => Math.round(rows.reduce((a, r) => a + r[k], 0) / rows.length)
const summary = {
  items: ITEMS,
  concurrency: CONCURRENCY,
  calls: CALLS,
  rounds: rows,
  bulkVsConcurrent: +(avg('bulkPerS') / avg('oneByOneConcurrentPerS')).toFixed(2),
  bulkVsSequential: +(avg('bulkPerS') / avg('oneByOneSequentialPerS')).toFixed(2),
  sdkOverheadMedianUs: avg('sdkMedianUs') - avg('rawMedianUs'),
  sdkEvidenceCheckMedianUs: avg('sdkMedianUs') - avg('sdkNoVerifyMedianUs'),
  evidenceCheckCpuUs: avg('evidenceCheckCpuUs'),
  machine: { cpus: (await import('node:os')).cpus().length, load: (await import('node:os')).loadavg().map((l) => +l.toFixed(1)) },
  at: new Date().toISOString(),
}
log(
  `bulk / one-by-one: ×${summary.bulkVsConcurrent} (concurrency ${CONCURRENCY}), ×${summary.bulkVsSequential} (sequential); ` +
    `SDK overhead per call: +${summary.sdkOverheadMedianUs} µs median end to end (evidence check ${summary.sdkEvidenceCheckMedianUs} µs of it; ${summary.evidenceCheckCpuUs} µs CPU measured alone)`,
)
mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
writeFileSync(join(ROOT, 'bench/results/batch.json'), JSON.stringify(summary, null, 2) + '\n')

await Promise.all([sdk.close(), sdkNoVerify.close(), raw.close()])
await gw.stop()
await h.close()
process.exit(0)
