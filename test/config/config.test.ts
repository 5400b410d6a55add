// Configuration is validated at start: a bad value is refused with the setting named.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { loadConfig, ConfigError } from '../../src/config/index.js'
import { ROOT } from '../helpers/harness.js'

t.test('defaults and env overrides', async (t) => {
  const c = loadConfig({ TONGBAN_PORT: '9000', TONGBAN_UPSTREAM_MPS_IDENTITY: 'http://127.0.0.1:7101' }, ROOT)
  t.equal(c.http.port, 9000)
  t.equal(c.node.id, '320000')
  t.equal(c.node.tier, 'province')
  t.equal(c.upstreams['mps-identity'], 'http://127.0.0.1:7101')
  t.equal(c.audit.batchMaxSize, 256)
  t.equal(c.policy.decisionWorkingDays, 10)
})

t.test('bad values are refused with the setting named', async (t) => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ TONGBAN_PORT: 'eighty' }, /TONGBAN_PORT/],
    [{ TONGBAN_PORT: '70000' }, /port/],
    [{ TONGBAN_NODE_REGION: '32000' }, /region/],
    [{ TONGBAN_NODE_TIER: 'village' }, /tier/],
    [{ TONGBAN_PG_SCHEMA: 'drop table;' }, /schema/],
    [{ TONGBAN_AUDIT_ALG: 'none' }, /alg/],
    [{ TONGBAN_UPSTREAMS: '{not json' }, /TONGBAN_UPSTREAMS/],
    [{ TONGBAN_CONFIG: 'no/such/file.json' }, /does not exist/],
    [{ TONGBAN_AUDIT_BATCH_MAX: '0' }, /batchMaxSize/],
  ]
  for (const [env, message] of bad) {
    let err: unknown
    try {
      loadConfig(env, ROOT)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, JSON.stringify(env))
    t.match((err as Error)?.message, message)
  }
})

t.test('the server exits 2 with a clear message on bad configuration', async (t) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, TONGBAN_NODE_TIER: 'village' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(r.status, 2)
  t.match(r.stderr, /tongban: invalid configuration/)
  t.match(r.stderr, /tier/)
})
