// kill -9 of a gateway process under load, then a restart on the same chain: every 200 a
// client received has its audit record with the same leaf hash, no batch is half-written,
// and the chain (signatures, roots, links) verifies end to end across the crash.
import t from 'tap'
import { startNode } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, verifyChain } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })

t.test('kill -9 under load: every 200 is durable, the chain survives the crash', async (t) => {
  const h = await startNode({ tag: 'kill9' })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')

  const gw = await startGateway(h, 'k')
  let killed = false
  const load = loadLoop({ base: gw.base, path: '/v1/verify/identity', token, body, concurrency: 32, until: () => !killed })
  await sleep(2500)
  await gw.stop('SIGKILL')
  killed = true
  const before = await load
  const crashed = tally(before)
  t.comment(`answers before and at the crash: ${JSON.stringify(crashed)}`)
  t.ok(before.filter((a) => a.status === 200).length > 200, 'the gateway was under load when it was killed')
  t.ok(before.every((a) => a.status === 200 || a.status === 0), 'only 200s, then broken connections (no other status)')

  // Restart on the same replica id: the chain continues from its committed head.
  const again = await startGateway(h, 'k')
  t.teardown(() => again.stop())
  const after = await loadLoop({ base: again.base, path: '/v1/verify/identity', token, body, concurrency: 16, count: 500 })
  t.same(tally(after), { 200: 500 }, 'the restarted process answers')
  t.equal((await again.stop()).code, 0, 'and stops cleanly')

  const audited = await checkAnswersAudited(h, [...before, ...after])
  t.same(audited.problems, [], `every 200 has its record with the same leaf hash (${audited.matched} of ${audited.ok})`)
  t.equal(audited.matched, audited.ok)

  const chain = await verifyChain(h, gw.chain)
  t.same(chain.problems, [], `chain ${gw.chain}: ${chain.checkpoints} checkpoints, ${chain.records} records verify`)
  // Records without a checkpoint, or a checkpoint without all its records, would show above;
  // the database holds exactly the records of the committed checkpoints.
  const [{ n }] = await h.query('SELECT count(*)::int AS n FROM audit_records WHERE chain = $1', [gw.chain])
  const [{ s }] = await h.query('SELECT coalesce(sum(size), 0)::int AS s FROM audit_checkpoints WHERE chain = $1', [gw.chain])
  t.equal(n, s, 'no half-written batch: records = sum of checkpoint sizes')
  t.ok(n >= audited.ok, 'requests cut off by the kill may have records too; never fewer than the 200s')
})
