// A dispute's deadline jobs survive a restart (docs/disputes.md): filed on one node process,
// which stops before the reminder is due; a new process on the same database and Redis runs
// the reminder and the escalation (BullMQ delayed jobs in Redis), each once.
import t from 'tap'
import { context, startNode, uniqueName } from '../helpers/harness.js'
import { waitFor } from '../helpers/tiers.js'

const schema = uniqueName('disputerestart')
const env = { TONGBAN_DISPUTE_DEADLINE_SECONDS: '4' }
const PERSON = { idNumber: '321081196204019768', name: '周洁红' }

t.test('reminder and escalation run on the node started after the one that scheduled them', async (t) => {
  const first = await startNode({ schema, keepSchema: true, env })
  let id: string
  try {
    const tok = await first.token('jn-civil-affairs')
    const a = await first.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${tok}`, ...context() }, payload: PERSON })
    const filed = await first.app.inject({
      method: 'POST',
      url: '/v1/disputes',
      headers: { authorization: `Bearer ${tok}` },
      payload: { requestId: a.headers['tongban-request-id'], evidence: a.headers['tongban-evidence'], answer: a.body, items: ['match'], reason: 'MISSING', description: '户籍记录缺失' },
    })
    t.equal(filed.statusCode, 201, filed.body)
    id = filed.json().id
    const [row] = await first.query('SELECT reminded_at FROM disputes WHERE id = $1', [id])
    t.equal(row.reminded_at, null, 'the first process stops before the reminder is due')
  } finally {
    await first.close()
  }

  const second = await startNode({ schema, env })
  t.teardown(() => second.close())
  await waitFor('the escalation on the new process', async () => (await second.query('SELECT escalated_at FROM disputes WHERE id = $1', [id]))[0].escalated_at !== null)
  const events = await second.query('SELECT action FROM dispute_events WHERE dispute_id = $1 ORDER BY id', [id])
  t.same(events.map((e) => e.action), ['filed', 'reminded', 'escalated'], 'each step once')
  const notices = await second.query("SELECT kind FROM notifications WHERE link = $1 ORDER BY id", [`/v1/disputes/${id}`])
  t.same(notices.map((n) => n.kind), ['dispute', 'dispute-reminder', 'dispute-escalation'])
})
