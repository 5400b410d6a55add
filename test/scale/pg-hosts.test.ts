// TONGBAN_PG_HOSTS (src/stores/postgres.ts): the list is parsed strictly, and the pool
// writes to the first host that answers and is not in recovery — here a closed port first,
// then the shared server. (The standby case runs on a real pair: pg-standby.test.ts and the
// drills in test/faults/pg-*.fault.ts.)
import t from 'tap'
import { loadConfig } from '../../src/config/index.js'
import { createPool, parseHosts } from '../../src/stores/postgres.js'
import { freePort } from '../helpers/gateway-process.js'
import { PG_URL, ROOT } from '../helpers/harness.js'

t.test('the host list', async (t) => {
  t.same(parseHosts(''), [])
  t.same(parseHosts('db1:5432, [::1]:5433,10.0.0.2:6432'), [
    { host: 'db1', port: 5432 },
    { host: '::1', port: 5433 },
    { host: '10.0.0.2', port: 6432 },
  ])
  for (const bad of ['db1', ':5432', 'db1:0', 'db1:99999', 'db1:54x2']) t.throws(() => parseHosts(bad), `${bad} refused`)
  for (const bad of ['db1', 'db1:5432,', 'db1:5432;db2:5432', 'db 1:5432']) {
    t.throws(() => loadConfig({ TONGBAN_PG_HOSTS: bad }, ROOT), `the configuration refuses TONGBAN_PG_HOSTS=${JSON.stringify(bad)}`)
  }
  t.throws(() => loadConfig({ TONGBAN_PG_SYNC_COMMIT: 'off' }, ROOT), 'synchronous_commit=off is not offered')
  t.throws(() => loadConfig({ TONGBAN_PG_READ_URL: 'redis://x' }, ROOT), 'the read URL is a postgres:// URL')
  t.equal(loadConfig({}, ROOT).postgres.synchronousCommit, 'remote_apply', 'remote_apply by default')
})

t.test('a dead host first: the pool writes to the next one, and says so', async (t) => {
  const dead = await freePort()
  const live = new URL(PG_URL)
  const seen: Array<string | null> = []
  const cfg = loadConfig({ TONGBAN_PG_URL: PG_URL, TONGBAN_PG_HOSTS: `127.0.0.1:${dead},${live.hostname}:${live.port || 5432}` }, ROOT).postgres
  const pool = createPool(cfg, 'tongban-test-hosts', { onPrimary: (p) => seen.push(p) })
  t.teardown(() => pool.end())
  const { rows } = await pool.query('SELECT current_setting($1) AS port, current_setting($2) AS sc, pg_is_in_recovery() AS r', ['port', 'synchronous_commit'])
  t.same(rows[0], { port: String(live.port || 5432), sc: 'remote_apply', r: false }, 'connected to the live server, with remote_apply')
  t.same(seen, [`${live.hostname}:${live.port || 5432}`], 'the write host was reported once')
})

t.test('no host takes writes: the query fails (AUDIT_UNAVAILABLE upstream), it does not hang', async (t) => {
  const cfg = loadConfig({ TONGBAN_PG_URL: PG_URL, TONGBAN_PG_HOSTS: `127.0.0.1:${await freePort()},127.0.0.1:${await freePort()}` }, ROOT).postgres
  const pool = createPool(cfg, 'tongban-test-hosts')
  t.teardown(() => pool.end())
  await t.rejects(pool.query('SELECT 1'), /no PostgreSQL host takes writes/)
})
