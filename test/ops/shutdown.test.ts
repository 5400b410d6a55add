// SIGTERM during load on a real gateway process: in-flight requests finish, the last
// batch is sealed, the process exits 0, and every 200 the clients saw has its record.
import t from 'tap'
import { request } from 'undici'
import { startNode, context } from '../helpers/harness.js'
import { spawnGateway } from '../helpers/gateway-process.js'
import { person } from '../../dev/providers/population.js'
import { decodeEvidence } from '../../src/evidence/evidence.js'
import { leafHash } from '../../src/evidence/merkle.js'
import { jcs } from '../../src/evidence/jcs.js'

t.test('SIGTERM under load loses no audit record and exits 0', async (t) => {
  // The harness prepares the schema and gives us tokens; the gateway under test is a
  // separate process on the same schema. A slow upstream keeps requests in flight.
  const h = await startNode({ tag: 'shutdown', providerDelayMs: 1500 })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const gw = await spawnGateway(h, 'proc')
  const base = gw.base

  const p = person(7)
  const fire = () =>
    request(`${base}/v1/verify/identity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...context() },
      body: JSON.stringify({ idNumber: p.idNumber, name: p.name }),
    }).then(async (r) => ({ status: r.statusCode, body: await r.body.text(), evidence: r.headers['tongban-evidence'] as string | undefined }), (e) => ({ status: 0, body: String(e), evidence: undefined }))

  // The upstream counts what reaches it: SIGTERM goes once all 40 wait on it (accepted,
  // authenticated, in flight), however long a busy machine takes to get them there.
  let reached = 0
  h.provider.server.on('request', () => reached++)
  const inflight = Array.from({ length: 40 }, fire)
  for (const until = Date.now() + 60_000; reached < 40; ) {
    if (Date.now() > until) throw new Error(`only ${reached} of 40 requests reached the upstream`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const code = await gw.stop('SIGTERM')
  const answers = await Promise.all(inflight)

  t.equal(code, 0, `exit code 0 ${gw.output().slice(0, 500)}`)
  const ok = answers.filter((a) => a.status === 200)
  t.equal(ok.length, 40, 'every request in flight at SIGTERM was answered')
  for (const a of ok) {
    t.ok(a.evidence)
    const ev = decodeEvidence(a.evidence!)
    const rows = await h.query('SELECT leaf FROM audit_records WHERE request_id = $1', [ev.record.requestId])
    t.equal(rows.length, 1, 'the record is in PostgreSQL')
    t.equal(rows[0]?.leaf, leafHash(jcs(ev.record)).toString('hex'), 'with the same leaf hash')
  }
})
