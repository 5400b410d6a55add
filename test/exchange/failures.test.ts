// What happens when a part fails: PostgreSQL unreachable (no answer without its audit
// record), the upstream down or slow (502/504 naming the hop). Real processes and sockets.
import t from 'tap'
import net from 'node:net'
import { startNode, context, PG_URL } from '../helpers/harness.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { person } from '../../dev/providers/population.js'

const p0 = person(0)
const body = { idNumber: p0.idNumber, name: p0.name }

t.test('PostgreSQL unreachable: 503 AUDIT_UNAVAILABLE, nothing leaks; recovers on its own', async (t) => {
  const pgPort = Number(new URL(PG_URL).port || 5432)
  const proxy = await startTcpProxy(pgPort)
  const url = new URL(PG_URL)
  url.port = String(proxy.port)
  const h = await startNode({ tag: 'pgdown', env: { TONGBAN_PG_URL: url.toString(), TONGBAN_PG_QUERY_TIMEOUT_MS: '1500' } })
  t.teardown(async () => {
    await proxy.restore().catch(() => {})
    await h.close()
    await proxy.close()
  })
  const token = await h.token('jn-civil-affairs')
  const verify = () =>
    h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: body })

  t.equal((await verify()).statusCode, 200, 'works while PostgreSQL is reachable')
  const before = (await h.query('SELECT count(*)::int AS n FROM audit_records'))[0].n

  await proxy.cut()
  const answers = await Promise.all(Array.from({ length: 20 }, verify))
  for (const res of answers) {
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'AUDIT_UNAVAILABLE')
    t.notOk(res.headers['tongban-evidence'], 'no evidence without a record')
    t.notMatch(res.body, /match/, 'the upstream answer is not released')
  }
  const ready = await h.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().postgres, 'unavailable')

  await proxy.restore()
  let recovered = false
  for (let i = 0; i < 50 && !recovered; i++) {
    recovered = (await verify()).statusCode === 200
    if (!recovered) await new Promise((r) => setTimeout(r, 200))
  }
  t.ok(recovered, 'answers again once PostgreSQL is back, without a restart')
  const after = (await h.query('SELECT count(*)::int AS n FROM audit_records'))[0].n
  t.ok(after > before, 'new records are written after recovery')
  // The chain has no hole: every checkpoint names its predecessor.
  const cps = await h.query('SELECT seq, prev, hash FROM audit_checkpoints ORDER BY chain, seq')
  for (let i = 1; i < cps.length; i++) t.equal(cps[i].prev, cps[i - 1].hash, `checkpoint ${cps[i].seq} chains`)
})

t.test('upstream down: 502 UPSTREAM_UNAVAILABLE naming the hop, audited as failed', async (t) => {
  // A port that was just free: nothing listens there.
  const free = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
  const h = await startNode({ tag: 'updown', env: { TONGBAN_UPSTREAM_MPS_IDENTITY: `http://127.0.0.1:${free}` } })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const res = await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: body })
  t.equal(res.statusCode, 502)
  t.equal(res.json().code, 'UPSTREAM_UNAVAILABLE')
  t.equal(res.json().hop, 'mps-identity')
  const [row] = await h.query("SELECT decision, reason FROM audit_records WHERE operation = 'verify'")
  t.same(row, { decision: 'failed', reason: 'UPSTREAM_UNAVAILABLE' })
})

t.test('upstream slower than the catalogue timeout: 504 UPSTREAM_TIMEOUT in bounded time', async (t) => {
  const h = await startNode({ tag: 'upslow', providerDelayMs: 4000 })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const started = Date.now()
  const res = await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: body })
  const waited = Date.now() - started
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'UPSTREAM_TIMEOUT')
  t.equal(res.json().hop, 'mps-identity')
  t.ok(waited < 3900, `gave up at the 3000 ms timeout, not when the upstream answered (${waited} ms)`)
})
