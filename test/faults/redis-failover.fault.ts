// Redis Sentinel failover under load (issue 17): a gateway process on one master, one
// replica and three sentinels (scripts/redis-topology.mjs); conditional queries (a grant with
// a daily quota) and bursts of a second system against the per-system rate limit run while
// the master is killed with kill -9. Sentinel promotes the replica. Measured: the time until
// quota decisions and the rate limit work again. Checked: conditional queries fail closed
// (503 QUOTA_UNAVAILABLE) while no master is known; the quota is never exceeded, counting
// the writes the old master took with it (quota increments wait for the replica: WAIT 1);
// every 200 the clients received has its audit record.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cli, startRedisSentinel } from '../../scripts/redis-topology.mjs'
import { startNode, type Harness } from '../helpers/harness.js'
import { chinaDay, quotaKey } from '../../src/policy/quota.js'
import { samplePersons } from '../../dev/providers/population.js'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, type Answer, type Gateway } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })
const QUOTA = 400
const RATE = 60
const RESOURCE = '103002/00002'

t.test('Redis master killed under load: Sentinel promotes the replica, quotas hold', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-failover-'))
  const topo = await startRedisSentinel({ dir })
  let h: Harness | undefined
  let gw: Gateway | undefined
  t.teardown(async () => {
    await gw?.stop('SIGKILL')
    await h?.close()
    await topo.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  h = await startNode({ tag: 'redisfailover', env: topo.env })
  const jn = await h.token('jn-civil-affairs')
  const mobile = await h.token('jn-civil-affairs-mobile')
  const nr = await h.token('js-natural-resources')
  const applied = await h.app.inject({
    method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${jn}` },
    payload: { resource: RESOURCE, items: ['properties'], purposes: ['SA-01'], basis: 'failover drill', validTo: new Date(Date.now() + 86400_000).toISOString(), dailyQuota: QUOTA },
  })
  const decided = await h.app.inject({ method: 'POST', url: `/v1/applications/${applied.json().id}/decision`, headers: { authorization: `Bearer ${nr}` }, payload: { decision: 'approve' } })
  t.equal(decided.statusCode, 200, 'grant approved')
  const grantId = decided.json().grantId as string
  gw = await startGateway(h, 'failover', { TONGBAN_RATE_LIMIT: String(RATE) })

  let stop = false
  const until = () => !stop
  const conditional = loadLoop({ base: gw.base, path: `/v1/resources/${encodeURIComponent(RESOURCE)}/query`, token: jn, body, concurrency: 3, until })
  // Every 250 ms a burst of RATE + 20 queries of a second system: the limit works when some are refused.
  const bursts: Array<{ at: number; answers: Answer[] }> = []
  const burstLoop = (async () => {
    while (!stop) {
      const at = Date.now()
      bursts.push({ at, answers: await loadLoop({ base: gw!.base, path: '/v1/verify/identity', token: mobile, body, concurrency: 10, count: RATE + 20 }) })
      await sleep(250)
    }
  })()

  await sleep(2500)
  const killAt = Date.now()
  const oldPort = await topo.killMaster()
  const newPort = await topo.waitForFailover(oldPort)
  const promotedAt = Date.now()
  // The promoted master has no replica yet: quota increments cannot be acknowledged by one
  // (WAIT 1) and conditional queries stay closed until the old server is back as a replica.
  await sleep(2000)
  const restartAt = Date.now()
  await topo.restartServer(oldPort)
  const replicaBackAt = Date.now()
  await sleep(5000)
  stop = true
  const [c] = await Promise.all([conditional, burstLoop])

  const limited = (b: { answers: Answer[] }) => b.answers.some((a) => a.code === 'RATE_LIMITED')
  const rateBack = bursts.find((b) => b.at > promotedAt - 5000 && b.at > killAt && limited(b) && bursts.some((x) => x.at > killAt && x.at < b.at && !limited(x)))
  const rateWorkedAfter = bursts.filter((b) => b.at > killAt && limited(b))[0]
  const lastUnavailable = Math.max(killAt, ...c.filter((a) => a.code === 'QUOTA_UNAVAILABLE' && a.at < replicaBackAt + 3000).map((a) => a.at))
  const quotaBack = c.find((a) => a.at > lastUnavailable && (a.status === 200 || a.code === 'QUOTA_EXCEEDED'))
  const released = c.filter((a) => a.status === 200).length
  const counted = Number(await cli(newPort, 'GET', `${h.config.redis.prefix}${quotaKey(grantId, chinaDay(Date.now()))}`))
  const audited = await checkAnswersAudited(h, [...c, ...bursts.flatMap((b) => b.answers)])
  const allBurst = bursts.flatMap((b) => b.answers)

  t.comment(`requests: conditional ${c.length}, rate-limit bursts ${allBurst.length} (${bursts.length} bursts)`)
  t.comment(`conditional: ${JSON.stringify(tally(c))}`)
  t.comment(`bursts:      ${JSON.stringify(tally(allBurst))}`)
  t.comment(`failures seen by clients (conditional 503 + transport errors): ${c.filter((a) => a.status === 503 || a.status === 0).length}`)
  t.comment(`sentinel promoted the replica (${oldPort} → ${newPort}) in ${promotedAt - killAt} ms`)
  t.comment(`old master restarted ${restartAt - killAt} ms after the kill, a replica in sync ${replicaBackAt - killAt} ms after it`)
  t.comment(`quota decisions back ${quotaBack ? quotaBack.at - killAt : 'never'} ms after the kill (${quotaBack ? quotaBack.at - replicaBackAt : '-'} ms after a replica was back)`)
  t.comment(`rate limit enforced again ${rateBack ? rateBack.at - killAt : rateWorkedAfter ? `${rateWorkedAfter.at - killAt} (never skipped)` : 'never'} ms after the kill`)
  t.comment(`quota ${QUOTA}: released ${released}, counted on the new master ${counted}`)
  t.comment(`records lost: ${audited.problems.length} (of ${audited.ok} answers 200)`)

  const allowed = new Set(['200', '429 QUOTA_EXCEEDED', '429 RATE_LIMITED', '503 QUOTA_UNAVAILABLE'])
  t.same(Object.keys(tally(c)).filter((k) => !allowed.has(k)), [], 'conditional queries: 200, quota/rate refusals or 503 QUOTA_UNAVAILABLE (fail closed), nothing else')
  t.ok(c.some((a) => a.code === 'QUOTA_UNAVAILABLE'), 'while no master was known, conditional queries failed closed')
  t.ok(quotaBack, 'quota decisions work again after the failover, once a replica is back')
  t.same(Object.keys(tally(c.filter((a) => a.at > replicaBackAt + 3000))).filter((k) => k.startsWith('503')), [], 'no QUOTA_UNAVAILABLE 3 s after the replica is back')
  t.ok(rateWorkedAfter, 'the rate limit works again after the failover')
  t.ok(released <= QUOTA, `the quota is never exceeded: ${released} released ≤ ${QUOTA}`)
  t.ok(counted >= released, `the promoted master counts every release (${counted} ≥ ${released}): none of the old master's lost writes was acted on`)
  t.same(audited.problems, [], `records lost: 0 (${audited.matched} answers checked)`)
  t.equal(await topo.currentMasterPort(), newPort, 'the sentinels name the promoted master')
})
