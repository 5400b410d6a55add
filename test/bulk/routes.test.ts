// The batch routes as plugins (src/bulk/routes.ts and routes/): what the split must keep.
// No worker here, so a batch stays queued until cancelled.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'

const h = await startNode({ tag: 'batch_routes', env: { TONGBAN_BATCH_WORKER: '0' } })
t.teardown(() => h.close())
const token = await h.token('jn-civil-affairs')
const [person] = samplePersons(1)

async function queuedBatch(): Promise<string> {
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/batches',
    headers: { authorization: `Bearer ${token}`, ...context({ 'tongban-case-id': 'JN-ROUTES-1' }) },
    payload: { service: 'identity', items: [{ idNumber: person.idNumber, name: person.name }] },
  })
  t.equal(res.statusCode, 202)
  return res.json().id
}

t.test('the NDJSON parser serves every batch route, not only the submission', async (t) => {
  const id = await queuedBatch()
  const del = await h.app.inject({
    method: 'DELETE',
    url: `/v1/batches/${id}`,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
    payload: '{}\n',
  })
  t.equal(del.statusCode, 200, 'not 415')
  t.equal(del.json().status, 'cancelled')
})

t.test('the results of a batch that ran nothing: an empty NDJSON stream with its status', async (t) => {
  const id = await queuedBatch()
  const del = await h.app.inject({ method: 'DELETE', url: `/v1/batches/${id}`, headers: { authorization: `Bearer ${token}` } })
  t.equal(del.statusCode, 200)
  const res = await h.app.inject({ method: 'GET', url: `/v1/batches/${id}/results`, headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/x-ndjson/)
  t.equal(res.headers['tongban-batch-status'], 'cancelled')
  t.equal(res.body, '')
})
