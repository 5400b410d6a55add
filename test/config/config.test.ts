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

t.test('each setting: environment > config file > default, with the same names as before', async (t) => {
  const dir = t.testdir({
    'node.json': JSON.stringify({
      node: { id: '320100', tier: 'city', parent: 'none' },
      http: { host: '0.0.0.0', port: 9001 },
      upstreams: { a: 'http://file-a', b: 'http://file-b' },
      metrics: { token: '' },
      batch: { worker: false, limits: { a: { concurrency: 2 } } },
      tiers: { listen: { port: 9444 }, nodes: [{ id: '320100', tier: 'city', region: '320100' }] },
      pki: { dir: 'pki' },
      logLevel: 'warn',
    }),
    'topology.json': JSON.stringify({ nodes: [{ id: '320100', tier: 'city', region: '320100', parent: '320000' }] }),
  })
  const file = loadConfig({ TONGBAN_CONFIG: `${dir}/node.json` }, ROOT)
  t.equal(file.node.id, '320100', 'from the file')
  t.equal(file.node.region, '320100', 'derived from the node id')
  t.equal(file.node.name, 'Tongban node 320100')
  t.equal(file.node.parent, null, '"none" is no parent')
  t.equal(file.node.publicUrl, 'http://0.0.0.0:9001', 'derived from host and port')
  t.equal(file.pki.dir, `${ROOT}/pki`, 'paths are relative to the root')
  t.equal(file.pki.certFile, `${ROOT}/pki/node/320100.crt.pem`, 'and the node files to the PKI dir')
  t.equal(file.metrics.token, null, 'an empty token is no token')
  t.equal(file.batch.worker, false)
  t.same(file.batch.limits, { a: { concurrency: 2 } })
  t.same(file.tiers.listen, { host: '0.0.0.0', port: 9444 }, 'the node listener defaults to the HTTP host')
  t.same(file.tiers.nodes, [{ id: '320100', tier: 'city', region: '320100', parent: null }], 'a node without parent is a root')
  t.equal(file.postgres.poolSize, 10, 'what the file leaves out is the default')
  t.equal(file.logLevel, 'warn')

  const env = loadConfig({
    TONGBAN_CONFIG: `${dir}/node.json`,
    TONGBAN_PORT: '',
    PORT: '7001',
    TONGBAN_NODE_PARENT: '320000',
    TONGBAN_UPSTREAMS: '{"a":"http://env-a"}',
    TONGBAN_UPSTREAM_B_C: 'http://env-bc',
    TONGBAN_BATCH_WORKER: 'yes',
    TONGBAN_TOPOLOGY_FILE: `${dir}/topology.json`,
    TONGBAN_NODE_HOST: '::1',
    LOG_LEVEL: 'debug',
    TONGBAN_LOG_LEVEL: 'error',
  }, ROOT)
  t.equal(env.http.port, 7001, 'an empty TONGBAN_PORT is unset: PORT is next')
  t.equal(env.node.parent, '320000')
  t.same(env.upstreams, { a: 'http://env-a', b: 'http://file-b', 'b-c': 'http://env-bc' }, 'upstreams merge: file < TONGBAN_UPSTREAMS < TONGBAN_UPSTREAM_<NAME>')
  t.equal(env.batch.worker, true)
  t.same(env.tiers.nodes.map((n) => n.parent), ['320000'], 'the topology file wins over the file\'s nodes')
  t.same(env.tiers.listen, { host: '::1', port: 9444 })
  t.equal(env.logLevel, 'error', 'TONGBAN_LOG_LEVEL before LOG_LEVEL')

  const inline = loadConfig({ TONGBAN_CONFIG: `${dir}/node.json`, TONGBAN_TOPOLOGY_FILE: `${dir}/topology.json`, TONGBAN_TOPOLOGY: '{"nodes":[]}', TONGBAN_NODE_PARENT: '' }, ROOT)
  t.same(inline.tiers.nodes, [], 'TONGBAN_TOPOLOGY wins over the topology file, { nodes } unwrapped')
  t.equal(inline.node.parent, null, 'an empty TONGBAN_NODE_PARENT is no parent')
})

t.test('an error names where the bad value came from', async (t) => {
  const dir = t.testdir({ 'node.json': JSON.stringify({ http: { port: 99999 } }) })
  const message = (env: Record<string, string>) => {
    try {
      loadConfig(env, ROOT)
    } catch (e) {
      t.type(e, ConfigError)
      return (e as Error).message
    }
    return 'accepted'
  }
  t.match(message({ TONGBAN_CONFIG: `${dir}/node.json` }), /\/http\/port must be <= 65535 \(.*node\.json http\.port\)/)
  t.match(message({ TONGBAN_CONFIG: `${dir}/node.json`, PORT: '70000' }), /\/http\/port must be <= 65535 \(PORT\)/)
  t.match(message({ TONGBAN_BATCH_WORKER: 'maybe' }), /TONGBAN_BATCH_WORKER: expected 1\/0/)
  t.match(message({ TONGBAN_BATCH_LIMITS: '{"a":{"speed":1}}' }), /\/batch\/limits\/a must NOT have additional properties \(TONGBAN_BATCH_LIMITS\)/)
  t.match(message({ TONGBAN_TOPOLOGY_FILE: `${dir}/missing.json` }), /tiers\.topologyFile .*missing\.json/)
  t.match(message({ TONGBAN_METRICS_TOKEN: 'short' }), /\/metrics\/token .*\(TONGBAN_METRICS_TOKEN\)/)
})
