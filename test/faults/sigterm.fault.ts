// SIGTERM under continuous load (not only a fixed set of slow requests, as
// test/shutdown.test.ts has): the requests in flight finish, later ones are refused or
// find the port closed, the last batch is sealed, the process exits 0, and every 200 the
// clients saw has its record with the same leaf hash.
import t from 'tap'
import { startNode } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, verifyChain } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })

t.test('SIGTERM under load: in-flight requests finish, last batch sealed, exit 0', async (t) => {
  // A slightly slow upstream keeps a good number of requests in flight at any moment.
  const h = await startNode({ tag: 'sigterm', providerDelayMs: 40 })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const gw = await startGateway(h, 'term')

  let stopped = false
  const load = loadLoop({ base: gw.base, path: '/v1/verify/identity', token, body, concurrency: 48, until: () => !stopped })
  await sleep(2500)
  const termAt = Date.now()
  const exit = await gw.stop('SIGTERM')
  const exitAt = Date.now()
  stopped = true
  const answers = await load
  t.comment(`answers: ${JSON.stringify(tally(answers))}; exit after ${exitAt - termAt} ms`)

  t.same(exit, { code: 0, signal: null }, 'exit code 0')
  const ok = answers.filter((a) => a.status === 200)
  t.ok(ok.some((a) => a.at >= termAt), 'requests in flight at SIGTERM were answered 200 after it')
  // After SIGTERM: 200 (in flight), 503 (arrived while closing) or a closed port; nothing else.
  const odd = answers.filter((a) => a.status !== 200 && a.status !== 503 && a.status !== 0)
  t.same(tally(odd), {}, 'no other status')
  const refused = answers.filter((a) => a.status === 503)
  t.ok(refused.every((a) => a.at >= termAt), '503s only while closing')
  t.ok(refused.every((a) => a.code === 'NODE_SHUTTING_DOWN'), 'as problem+json NODE_SHUTTING_DOWN')

  const audited = await checkAnswersAudited(h, answers)
  t.same(audited.problems, [], `every 200 has its record with the same leaf hash (${audited.matched} of ${audited.ok})`)
  const chain = await verifyChain(h, gw.chain)
  t.same(chain.problems, [], `the chain verifies (${chain.checkpoints} checkpoints, ${chain.records} records)`)
  const [{ n }] = await h.query("SELECT count(*)::int AS n FROM audit_records WHERE chain = $1 AND decision = 'allowed'", [gw.chain])
  t.equal(n, ok.length, 'the records of allowed answers are exactly the 200s: the last batch was sealed, nothing extra released')
})
