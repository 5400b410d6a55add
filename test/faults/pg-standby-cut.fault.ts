// The network between the PostgreSQL primary and its synchronous standby cut under load
// (issue 17): the standby's replication connection goes through a test TCP proxy
// (primary_conninfo names the proxy). While it is cut, no commit is acknowledged, so
// answers stop (503 AUDIT_UNAVAILABLE once the query timeout passes) rather than release
// a record that exists on one machine only; when the link is back the standby catches up
// and answers resume on their own. Every 200 is on the standby, the chain verifies.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { clearRedis, startNode, type Harness } from '../helpers/harness.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { startPgPair } from '../../scripts/pg-standby.mjs'
import { samplePersons } from '../../dev/providers/population.js'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, verifyChain, waitForService } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })

const T0 = Date.now()
const mark = (m: string) => process.env.DEBUG_DRILL && console.error(`${Date.now() - T0} ms: ${m}`)

t.test('primary–standby link cut under load: answers stop, then resume; nothing unrecorded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-pgcut-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let proxy!: TcpProxy
  const pair = await startPgPair({ dir, standbyConnectsTo: async (primaryPort) => (proxy = await startTcpProxy(primaryPort)).port })
  t.teardown(async () => {
    mark('teardown: pair')
    await pair.stop()
    await proxy.close()
    mark('teardown: pair done')
  })
  mark('pair up')
  const h = await startNode({ tag: 'pgcut', env: pair.env, keepSchema: true })
  t.teardown(async () => {
    mark('teardown: node')
    await h.close()
    await clearRedis(h.config.redis.prefix)
    mark('teardown: node done')
  })
  const open = (url: string) => new pg.Pool({ connectionString: url, options: `-c search_path=${h.schema}`, max: 2 })
  const standby = open(pair.standbyUrl)
  const primary = open(pair.primaryUrl)
  t.teardown(() => Promise.all([standby.end(), primary.end()]))
  const onStandby: Harness = { ...h, query: async (sql, params) => (await standby.query(sql, params)).rows }
  const onPrimary: Harness = { ...h, query: async (sql, params) => (await primary.query(sql, params)).rows }

  mark('node up')
  const token = await h.token('jn-civil-affairs')
  const gw = await startGateway(h, 'pg', { TONGBAN_PG_QUERY_TIMEOUT_MS: '1500' })
  t.teardown(() => gw.stop())

  mark('gateway up')
  let stop = false
  const load = loadLoop({ base: gw.base, path: '/v1/verify/identity', token, body, concurrency: 16, until: () => !stop })
  await sleep(2000)
  const cutAt = Date.now()
  await proxy.cut()
  // The primary notices (its walsender's socket is gone) and reports no synchronous standby.
  for (let i = 0; i < 100 && (await pair.replication())?.state === 'streaming'; i++) await sleep(100)
  const noticedAt = Date.now()
  await sleep(4000)
  const restoreAt = Date.now()
  await proxy.restore()
  let syncAgainAt = 0
  for (let i = 0; i < 300 && !syncAgainAt; i++) {
    const r = await pair.replication()
    if (r?.state === 'streaming' && r.sync_state === 'sync') syncAgainAt = Date.now()
    else await sleep(100)
  }
  // Wait for 200s to come back (a condition, not a time), then keep the load on a while.
  const recoveredAt = await waitForService(gw.base, token, body)
  await sleep(3000)
  stop = true
  const answers = await load
  mark('load done')
  const ok = answers.filter((a) => a.status === 200)
  const firstAfter = ok.filter((a) => a.at >= restoreAt).sort((a, b) => a.at - b.at)[0]

  t.ok(recoveredAt > 0, 'service resumed')
  t.ok(syncAgainAt > 0, 'the standby streams synchronously again after the link is back')
  const other = answers.filter((a) => a.status !== 200 && !(a.status === 503 && a.code === 'AUDIT_UNAVAILABLE'))
  t.same(tally(other), {}, 'nothing but 200 and 503 AUDIT_UNAVAILABLE')
  const refused = answers.filter((a) => a.status === 503)
  t.ok(refused.length > 0, `the cut was felt (${refused.length} refused)`)
  t.ok(refused.every((a) => !a.evidence && !/"match"/.test(a.body)), 'a refusal carries neither evidence nor the upstream answer')
  // A commit acknowledged while the standby was unreachable would be a record on one machine.
  // (An answer sent off before the cut may still be on its way; one asked after it may not be 200.)
  const during = answers.filter((a) => a.status === 200 && a.at - a.ms > noticedAt && a.at < restoreAt)
  t.equal(during.length, 0, 'no 200 for a request made while the standby was cut off')
  t.ok(firstAfter, 'answers 200 again after the link is back, without a restart')

  const audited = await checkAnswersAudited(onStandby, answers)
  t.same(audited.problems, [], `every 200 is on the standby with its leaf hash (${audited.matched} of ${audited.ok})`)
  t.equal((await gw.stop()).code, 0, 'the gateway exits 0')
  // Both copies: the chain verifies on the primary, and the standby holds the same checkpoints.
  const chain = await verifyChain(onPrimary, gw.chain)
  t.same(chain.problems, [], `the chain verifies across the cut (${chain.checkpoints} checkpoints, ${chain.records} records)`)
  for (let i = 0; i < 100 && (await pair.replication())?.caught_up !== true; i++) await sleep(100)
  const copy = await verifyChain(onStandby, gw.chain)
  t.same([copy.checkpoints, copy.records, copy.problems], [chain.checkpoints, chain.records, []], 'the standby holds the same chain')

  mark('checked')
  t.comment(`drill: network cut between PostgreSQL primary and synchronous standby (TCP proxy on the replication link)`)
  t.comment(`requests: ${answers.length}; 200: ${ok.length}; failures seen by clients: ${answers.length - ok.length} (${JSON.stringify(tally(answers))})`)
  t.comment(`primary noticed the cut after ${noticedAt - cutAt} ms; link cut for ${restoreAt - cutAt} ms`)
  t.comment(`time to recover after the link is back: synchronous again after ${syncAgainAt - restoreAt} ms, service back after ${recoveredAt - restoreAt} ms (first loaded 200 after ${firstAfter ? firstAfter.at - restoreAt : NaN} ms)`)
  t.comment(`records lost: ${audited.problems.length} (every 200 checked against the standby: ${audited.matched})`)
})
