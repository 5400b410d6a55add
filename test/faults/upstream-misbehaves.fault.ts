// An upstream that hangs (never answers) and resets connections, over 10,000 requests
// through a real gateway process: every answer comes within the catalogue timeout (plus
// one retry for idempotent verifications), as 200, 502 or 504 naming the hop, each audited;
// and the process leaks neither memory nor sockets (heap after GC, handle and socket counts
// read from the process itself before and after).
import t from 'tap'
import http from 'node:http'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, startNode } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { loadLoop, sleep, startGateway, tally } from './helpers.js'

const TIMEOUT_MS = 300
const REQUESTS = 10_000
const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })

t.test(`upstream hangs and resets: bounded waits, no leak over ${REQUESTS} requests`, async (t) => {
  // The identity entry with a short timeout, so that hung calls cost 300 ms, not 3 s.
  const catalogDir = mkdtempSync(join(tmpdir(), 'tongban-catalog-'))
  t.teardown(() => rmSync(catalogDir, { recursive: true, force: true }))
  cpSync(join(ROOT, 'catalog'), catalogDir, { recursive: true })
  const file = join(catalogDir, '101001-00001.json')
  const entry = JSON.parse(readFileSync(file, 'utf8'))
  entry.service.upstream.timeoutMs = TIMEOUT_MS
  writeFileSync(file, JSON.stringify(entry, null, 2))

  // 1 in 10 calls hangs, 3 in 10 are reset, the rest answer.
  let calls = 0
  const hanging = new Set<http.ServerResponse>()
  const upstream = http.createServer((req, res) => {
    const i = calls++
    req.resume()
    req.on('end', () => {
      if (i % 10 === 0) {
        hanging.add(res)
        res.on('close', () => hanging.delete(res))
      } else if (i % 10 <= 3) {
        req.socket.resetAndDestroy()
      } else {
        res.setHeader('content-type', 'application/json')
        res.end('{"match":true}')
      }
    })
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => { upstream.closeAllConnections(); upstream.close(() => r()) }))
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`
  const openConnections = () => new Promise<number>((r) => upstream.getConnections((_e, n) => r(n)))

  const h = await startNode({ tag: 'upbad', env: { TONGBAN_CATALOG_DIR: catalogDir, TONGBAN_RATE_LIMIT: '0' } })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  // The breaker would soon refuse with 503 UPSTREAM_CIRCUIT_OPEN: this test is about every call reaching the misbehaving upstream.
  const gw = await startGateway(h, 'up', { TONGBAN_UPSTREAM_MPS_IDENTITY: upstreamUrl, TONGBAN_CATALOG_DIR: catalogDir, TONGBAN_RATE_LIMIT: '0', TONGBAN_PROVIDER_BREAKER_FAILURES: '1000' })
  t.teardown(() => gw.stop())

  const run = (count: number) => loadLoop({ base: gw.base, path: '/v1/verify/identity', token, body, concurrency: 64, count })
  await run(1000) // warm-up: pools, JIT, caches
  await sleep(500)
  const before = await gw.probe()
  const started = Date.now()
  const answers = await run(REQUESTS)
  const seconds = (Date.now() - started) / 1000
  await sleep(1000)
  const after = await gw.probe()

  const counts = tally(answers)
  t.comment(`${REQUESTS} requests in ${seconds.toFixed(1)} s: ${JSON.stringify(counts)}; upstream calls ${calls}`)
  t.comment(`probe before: ${JSON.stringify(before)}`)
  t.comment(`probe after:  ${JSON.stringify(after)}`)
  const allowed = new Set(['200', '502 UPSTREAM_UNAVAILABLE', '504 UPSTREAM_TIMEOUT'])
  t.same(Object.keys(counts).filter((k) => !allowed.has(k)), [], 'only 200, 502 UPSTREAM_UNAVAILABLE and 504 UPSTREAM_TIMEOUT')
  t.ok(counts['504 UPSTREAM_TIMEOUT'] > 0 && counts['502 UPSTREAM_UNAVAILABLE'] > 0 && counts['200'] > 0, 'all three happened')
  const failures = answers.filter((a) => a.status >= 500)
  t.ok(failures.every((a) => JSON.parse(a.body).hop === 'mps-identity'), 'every failure names the hop')
  const ms = answers.map((a) => a.ms).sort((a, b) => a - b)
  const p99 = ms[Math.floor(ms.length * 0.99)]
  const max = ms[ms.length - 1]
  t.comment(`latency p50 ${ms[ms.length >> 1].toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${max.toFixed(0)} ms`)
  // The deadline covers the retry too; the rest is this loaded 2-core machine.
  t.ok(max < TIMEOUT_MS + 2500, `no answer waited unboundedly (max ${max.toFixed(0)} ms)`)

  const [{ n }] = await h.query("SELECT count(*)::int AS n FROM audit_records WHERE chain = $1 AND operation = 'verify'", [gw.chain])
  t.equal(n, REQUESTS + 1000, 'every request audited (allowed or failed)')

  t.ok(after.heapUsedMiB - before.heapUsedMiB < 16, `heap after GC: ${before.heapUsedMiB} → ${after.heapUsedMiB} MiB`)
  t.ok(after.handles - before.handles < 20, `handles: ${before.handles} → ${after.handles}`)
  t.ok(after.sockets - before.sockets < 20, `sockets: ${before.sockets} → ${after.sockets}`)
  const open = await openConnections()
  t.ok(open <= 128, `connections open at the upstream: ${open} (pool bounded at 128)`)
  t.equal(hanging.size, 0, 'every hung call was abandoned by the gateway (its socket closed)')
  t.equal((await gw.stop()).code, 0, 'exits 0')
})
