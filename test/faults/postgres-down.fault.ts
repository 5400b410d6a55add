// PostgreSQL unreachable during load (the gateway's connections go through a TCP proxy
// that the test cuts: the shared server itself keeps running for everyone else). While it
// is gone, only 503 AUDIT_UNAVAILABLE — never a 200 without its record; when it is back,
// the node answers 200 again on its own within seconds, and the chain has no hole.
import t from 'tap'
import { PG_URL, startNode } from '../helpers/harness.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { samplePersons } from '../../dev/providers/population.js'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, verifyChain } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })

t.test('PostgreSQL cut under load: 503 AUDIT_UNAVAILABLE only, recovers by itself', async (t) => {
  const h = await startNode({ tag: 'pgfault' })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const proxy = await startTcpProxy(Number(new URL(PG_URL).port || 5432))
  t.teardown(() => proxy.close())
  const viaProxy = new URL(PG_URL)
  viaProxy.port = String(proxy.port)
  const gw = await startGateway(h, 'pg', { TONGBAN_PG_URL: viaProxy.toString(), TONGBAN_PG_QUERY_TIMEOUT_MS: '1500' })
  t.teardown(() => gw.stop())

  let phase: 'up' | 'down' | 'back' = 'up'
  let stop = false
  const load = loadLoop({ base: gw.base, path: '/v1/verify/identity', token, body, concurrency: 16, until: () => !stop })
  await sleep(1500)
  const cutAt = Date.now()
  phase = 'down'
  await proxy.cut()
  await sleep(3000)
  await proxy.restore()
  const restoredAt = Date.now()
  phase = 'back'
  await sleep(5000)
  stop = true
  const answers = await load
  t.comment(`phase at the end: ${phase}; answers: ${JSON.stringify(tally(answers))}`)

  const other = answers.filter((a) => a.status !== 200 && !(a.status === 503 && a.code === 'AUDIT_UNAVAILABLE'))
  t.same(tally(other), {}, 'nothing but 200 and 503 AUDIT_UNAVAILABLE')
  const refused = answers.filter((a) => a.status === 503)
  t.ok(refused.length > 0, `PostgreSQL's absence was felt (${refused.length} refused)`)
  t.ok(refused.every((a) => !a.evidence && !/"match"/.test(a.body)), 'a refusal carries neither evidence nor the upstream answer')
  // 200s answered while the database was cut would have no durable record: there must be
  // none (the proxy drops every connection at once, so nothing can commit through it).
  const during = answers.filter((a) => a.status === 200 && a.at > cutAt + 50 && a.at < restoredAt)
  t.equal(during.length, 0, 'no 200 while PostgreSQL was unreachable')

  const firstOkAfter = answers.filter((a) => a.status === 200 && a.at >= restoredAt).sort((a, b) => a.at - b.at)[0]
  t.ok(firstOkAfter, 'answers 200 again after PostgreSQL is back, without a restart')
  const recovery = firstOkAfter ? firstOkAfter.at - restoredAt : Infinity
  t.ok(recovery < 5000, `recovered within ${recovery} ms`)
  const lastSecond = answers.filter((a) => a.at > Date.now() - 1500)
  t.ok(lastSecond.length > 0 && lastSecond.every((a) => a.status === 200), 'and stays recovered')

  const audited = await checkAnswersAudited(h, answers)
  t.same(audited.problems, [], `every 200 has its record with the same leaf hash (${audited.matched})`)
  t.equal((await gw.stop()).code, 0, 'exits 0')
  const chain = await verifyChain(h, gw.chain)
  t.same(chain.problems, [], `the chain verifies across the outage (${chain.checkpoints} checkpoints)`)
})
