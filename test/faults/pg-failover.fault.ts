// PostgreSQL failover under load (issue 17): a gateway on a primary with a synchronous
// standby (scripts/pg-standby.mjs, TONGBAN_PG_HOSTS naming both). The primary is stopped
// as in a crash (`pg_ctl stop -m immediate`): answers become 503 AUDIT_UNAVAILABLE, never a
// 200 without its record on the standby. The standby is promoted (`pg_ctl promote`), the
// pool finds it (the host not in recovery) and service resumes without a restart. Every 200
// the clients got is in the promoted database with its leaf hash, the chain verifies, and
// the gateway's own integrity check passes there.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { clearRedis, startNode, type Harness } from '../helpers/harness.js'
import { startPgPair } from '../../scripts/pg-standby.mjs'
import { samplePersons } from '../../dev/providers/population.js'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, verifyChain, waitForService } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })

t.test('PostgreSQL primary stopped under load, standby promoted: nothing lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-pgfail-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pair = await startPgPair({ dir })
  t.teardown(() => pair.stop())
  const h = await startNode({ tag: 'pgfail', env: pair.env, keepSchema: true })
  t.teardown(async () => {
    await h.close()
    await clearRedis(h.config.redis.prefix)
  })
  // The promoted database, read directly (the harness's own pool knows one URL only).
  const promoted = new pg.Pool({ connectionString: pair.standbyUrl, options: `-c search_path=${h.schema}`, max: 2 })
  t.teardown(() => promoted.end())
  const onPromoted: Harness = { ...h, query: async (sql, params) => (await promoted.query(sql, params)).rows }

  const token = await h.token('jn-civil-affairs')
  const gw = await startGateway(h, 'pg', { TONGBAN_PG_QUERY_TIMEOUT_MS: '1500' })
  t.teardown(() => gw.stop())

  let stop = false
  const load = loadLoop({ base: gw.base, path: '/v1/verify/identity', token, body, concurrency: 16, until: () => !stop })
  await sleep(2000)
  const stoppedAt = Date.now()
  await pair.stopPrimary()
  const stoppedDone = Date.now()
  // The outage an operator sees before deciding to promote.
  await sleep(3000)
  const promoteAt = Date.now()
  await pair.promoteStandby()
  const promotedAt = Date.now()
  // Wait for the service to come back (a condition, not a time), then keep the load on a while.
  const recoveredAt = await waitForService(gw.base, token, body)
  await sleep(4000)
  stop = true
  const answers = await load
  const counts = tally(answers)
  const ok = answers.filter((a) => a.status === 200)
  const firstOk = ok.filter((a) => a.at >= promotedAt).sort((a, b) => a.at - b.at)[0]
  const failures = answers.length - ok.length

  t.ok(recoveredAt > 0, 'service resumed on the promoted standby without a restart')
  const other = answers.filter((a) => a.status !== 200 && !(a.status === 503 && a.code === 'AUDIT_UNAVAILABLE'))
  t.same(tally(other), {}, 'nothing but 200 and 503 AUDIT_UNAVAILABLE')
  const refused = answers.filter((a) => a.status === 503)
  t.ok(refused.length > 0, `the primary's absence was felt (${refused.length} refused)`)
  t.ok(refused.every((a) => !a.evidence && !/"match"/.test(a.body)), 'a refusal carries neither evidence nor the upstream answer')
  // With no primary, nothing can commit: a 200 arriving later than the stop itself took would be unrecorded.
  // (An answer sent off before the stop may still be on its way; one asked after it may not be 200.)
  const during = answers.filter((a) => a.status === 200 && a.at - a.ms > stoppedDone && a.at < promoteAt)
  t.equal(during.length, 0, 'no 200 for a request made between the stop and the promotion')
  t.ok(firstOk, 'clients get 200s again after the promotion')

  const audited = await checkAnswersAudited(onPromoted, answers)
  t.same(audited.problems, [], `every 200 the clients got is in the promoted database with its leaf hash (${audited.matched} of ${audited.ok})`)
  t.equal((await gw.stop()).code, 0, 'the gateway exits 0')
  const chain = await verifyChain(onPromoted, gw.chain)
  t.same(chain.problems, [], `the chain verifies across the failover (${chain.checkpoints} checkpoints, ${chain.records} records)`)

  // The gateway's own integrity check (src/auditor/integrity.ts), run by a gateway on the promoted database.
  const gw2 = await startGateway(h, 'pg2')
  t.teardown(() => gw2.stop())
  const auditor = await h.token('js-audit')
  const res = await request(`${gw2.base}/v1/audit/integrity?all=true`, { headers: { authorization: `Bearer ${auditor}`, 'tongban-purpose': 'SA-01', 'tongban-case-id': 'AUD-PGFAIL-1' } })
  const report = (await res.body.json()) as { ok: boolean; firstFailure?: unknown }
  t.equal(res.statusCode, 200, 'integrity report')
  t.equal(report.ok, true, `audit integrity passes on the promoted database${report.ok ? '' : `: ${JSON.stringify(report.firstFailure)}`}`)

  t.comment(`drill: PostgreSQL primary stopped (pg_ctl stop -m immediate), standby promoted (pg_ctl promote)`)
  t.comment(`requests: ${answers.length}; 200: ${ok.length}; failures seen by clients: ${failures} (${JSON.stringify(counts)})`)
  t.comment(`primary stop took ${stoppedDone - stoppedAt} ms; promotion took ${promotedAt - promoteAt} ms`)
  t.comment(`time to recover after the promotion: ${recoveredAt - promotedAt} ms (first loaded 200 after ${firstOk ? firstOk.at - promotedAt : NaN} ms); outage from the stop: ${recoveredAt - stoppedAt} ms`)
  t.comment(`records lost: ${audited.problems.length} (every 200 checked against the promoted database: ${audited.matched})`)
})
