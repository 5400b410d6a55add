// Draining (SIGTERM behind a load balancer, src/server.ts with http.drainMs): /readyz answers
// 503 `draining` while queries are still answered, and the gauge says so. The process side
// (HAProxy takes the replica out before it exits, no client sees a failure) is the drill
// test/faults/replica-kill.fault.ts.
import t from 'tap'
import { context, startNode } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'

t.test('draining: /readyz 503 draining, queries still answered, tongban_draining 1', async (t) => {
  const h = await startNode({ tag: 'drain' })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const p = person(3)
  const query = () => h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...context() }, payload: { idNumber: p.idNumber, name: p.name } })

  t.equal((await h.app.inject({ url: '/readyz' })).statusCode, 200, 'ready before')
  t.equal(h.app.draining(), false)
  h.app.startDraining()
  const r = await h.app.inject({ url: '/readyz' })
  t.equal(r.statusCode, 503)
  t.same(r.json(), { status: 'draining' })
  t.equal((await query()).statusCode, 200, 'a query arriving while draining is answered')
  const m = await h.app.inject({ url: '/metrics' })
  t.match(m.body, /^tongban_draining\{[^}]*\} 1$/m, 'tongban_draining 1')
})
