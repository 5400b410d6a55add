// A gateway on a PostgreSQL primary with a synchronous standby (scripts/pg-standby.mjs,
// issue 17): every 200's audit record is already on the standby, with its leaf hash, when
// the answer arrives (synchronous_commit = remote_apply); with the standby's replay paused,
// nothing is answered 200 at all; and the auditor's reads are served by the standby
// (TONGBAN_PG_READ_URL).
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { clearRedis, startNode } from '../helpers/harness.js'
import { startPgPair } from '../../scripts/pg-standby.mjs'
import { samplePersons } from '../../dev/providers/population.js'
import { startGateway } from '../faults/helpers.js'
import { decodeEvidence } from '../../src/evidence/evidence.js'
import { leafHash } from '../../src/evidence/merkle.js'
import { jcs } from '../../src/evidence/jcs.js'

const people = samplePersons(20)

t.test('a gateway on a primary with a synchronous standby', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-pgpair-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pair = await startPgPair({ dir })
  t.teardown(() => pair.stop())
  const rep = await pair.replication()
  t.match(rep, { state: 'streaming', sync_state: 'sync' }, 'the primary reports the standby streaming and synchronous')

  const h = await startNode({ tag: 'pgpair', env: pair.env, keepSchema: true })
  t.teardown(async () => {
    await h.close()
    await clearRedis(h.config.redis.prefix)
  })
  const pool = (url: string) => new pg.Pool({ connectionString: url, options: `-c search_path=${h.schema}`, max: 2 })
  const standby = pool(pair.standbyUrl)
  const primary = pool(pair.primaryUrl)
  t.teardown(() => Promise.all([standby.end(), primary.end()]))

  const gw = await startGateway(h, 'pg', { TONGBAN_PG_QUERY_TIMEOUT_MS: '2000' })
  t.teardown(() => gw.stop())
  const token = await h.token('jn-civil-affairs')
  const verify = (i: number) =>
    request(`${gw.base}/v1/verify/identity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'tongban-purpose': 'SA-01', 'tongban-case-id': `PGPAIR-${i}` },
      body: JSON.stringify({ idNumber: people[i % 20].idNumber, name: people[i % 20].name }),
    }).then(async (r) => ({ status: r.statusCode, body: await r.body.text(), requestId: r.headers['tongban-request-id'] as string, evidence: r.headers['tongban-evidence'] as string | undefined }))

  await t.test('each 200 has its record on the standby when the answer arrives', async (t) => {
    const checked: string[] = []
    const problems: string[] = []
    // Four callers at once, so that batches hold several records; each looks on the standby
    // the moment its answer is in.
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let i = w; i < 120; i += 4) {
          const a = await verify(i)
          if (a.status !== 200) {
            problems.push(`${i}: ${a.status} ${a.body.slice(0, 200)}`)
            continue
          }
          const { rows } = await standby.query('SELECT leaf FROM audit_records WHERE request_id = $1', [a.requestId])
          const leaf = leafHash(jcs(decodeEvidence(a.evidence!).record)).toString('hex')
          if (rows.length !== 1 || rows[0].leaf !== leaf) problems.push(`${a.requestId}: ${rows.length} rows on the standby${rows[0] ? `, leaf ${rows[0].leaf}` : ''}`)
          else checked.push(a.requestId)
        }
      }),
    )
    t.same(problems, [], 'no answer other than 200, and none whose record the standby lacks')
    t.equal(checked.length, 120, `${checked.length} answers, each already on the standby`)
    const { rows } = await standby.query('SELECT pg_is_in_recovery() AS r, current_setting($1) AS port', ['port'])
    t.same(rows[0], { r: true, port: String(pair.standbyPort) }, 'read from the standby itself (in recovery, its own port)')
  })

  await t.test('standby replay paused: no 200 (503 AUDIT_UNAVAILABLE), and answers resume when it goes on', async (t) => {
    // A commit waits for the standby to apply it; a paused replay holds it past the query timeout.
    await standby.query('SELECT pg_wal_replay_pause()')
    let resumed = false
    t.teardown(() => (resumed ? undefined : standby.query('SELECT pg_wal_replay_resume()')))
    const during = await Promise.all([0, 1, 2].map((i) => verify(1000 + i)))
    t.same(during.map((a) => a.status), [503, 503, 503], 'refused while the standby does not apply')
    t.ok(during.every((a) => JSON.parse(a.body).code === 'AUDIT_UNAVAILABLE' && !a.evidence && !/"match"/.test(a.body)), '503 AUDIT_UNAVAILABLE, no evidence, no upstream answer')
    await standby.query('SELECT pg_wal_replay_resume()')
    resumed = true
    let back: Awaited<ReturnType<typeof verify>> | undefined
    for (let i = 0; i < 100 && back?.status !== 200; i++) back = await verify(2000 + i)
    t.equal(back?.status, 200, 'answers 200 again once the standby applies')
    const { rows } = await standby.query('SELECT count(*)::int AS n FROM audit_records WHERE request_id = $1', [back!.requestId])
    t.equal(rows[0].n, 1, 'and that record is on the standby')
  })

  await t.test("the auditor's reads are served by the standby", async (t) => {
    const a = await verify(3000)
    t.equal(a.status, 200)
    const auditor = await h.token('js-audit')
    const res = await request(`${gw.base}/v1/audit/records/${a.requestId}`, { headers: { authorization: `Bearer ${auditor}`, 'tongban-purpose': 'SA-01', 'tongban-case-id': 'AUD-PGPAIR-1' } })
    const body = (await res.body.json()) as { record: { requestId: string }; leaf: string }
    t.equal(res.statusCode, 200, 'the auditor finds the record')
    t.equal(body.record?.requestId, a.requestId, 'the same record')
    t.equal(body.leaf, leafHash(jcs(decodeEvidence(a.evidence!).record)).toString('hex'), 'with the leaf hash of the evidence the caller holds')
    const reads = `tongban-${gw.chain}-read`
    const on = async (p: pg.Pool) => (await p.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [reads])).rows[0].n
    t.ok((await on(standby)) >= 1, `the read pool (${reads}) is connected to the standby`)
    t.equal(await on(primary), 0, 'and not to the primary')
    const writers = (await primary.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [`tongban-${gw.chain}`])).rows[0].n
    t.ok(writers >= 1, 'the write pool is on the primary')
  })

  t.equal((await gw.stop()).code, 0, 'the gateway exits 0')
})
