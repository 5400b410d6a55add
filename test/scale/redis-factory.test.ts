// The connection factory's own rules (src/stores/redis.ts), against the real local Redis: the
// topology a configuration selects, hostile host lists refused, Cluster-only hash tags, and
// writes that must reach a replica failing closed where none acknowledges them.
import t from 'tap'
import { loadConfig } from '../../src/config/index.js'
import { QuotaAdmissions } from '../../src/policy/quota.js'
import { bullPrefix, createRedis, parseHostPorts, slotTag, topologyOf, waitReplicasOf, writeReplicated } from '../../src/stores/redis.js'
import { REDIS_URL, ROOT, clearRedis, uniqueName } from '../helpers/harness.js'

const cfg = (env: Record<string, string>) => loadConfig({ TONGBAN_REDIS_URL: REDIS_URL, ...env }, ROOT).redis

t.test('the configuration selects the topology', async (t) => {
  t.equal(topologyOf(cfg({})), 'standalone')
  t.equal(topologyOf(cfg({ TONGBAN_REDIS_SENTINELS: '127.0.0.1:26379,10.0.0.2:26379' })), 'sentinel')
  t.equal(topologyOf(cfg({ TONGBAN_REDIS_CLUSTER_NODES: '127.0.0.1:7000', TONGBAN_REDIS_SENTINELS: '127.0.0.1:26379' })), 'cluster', 'Cluster wins')
  t.equal(waitReplicasOf(cfg({})), 0, 'standalone: no WAIT')
  t.equal(waitReplicasOf(cfg({ TONGBAN_REDIS_SENTINELS: 'a:1' })), 1, 'Sentinel: WAIT 1')
  t.equal(waitReplicasOf(cfg({ TONGBAN_REDIS_CLUSTER_NODES: 'a:1', TONGBAN_REDIS_WAIT_REPLICAS: '0' })), 0, 'explicit 0 wins')
  t.equal(waitReplicasOf(cfg({ TONGBAN_REDIS_SENTINELS: 'a:1', TONGBAN_REDIS_WAIT_REPLICAS: 'auto' })), 1)
  t.equal(cfg({ TONGBAN_REDIS_SENTINELS: '' }).sentinels, null, 'empty: unset')
  t.equal(bullPrefix(cfg({ TONGBAN_REDIS_PREFIX: 'n1:' })), 'n1:bull')
  t.equal(bullPrefix(cfg({ TONGBAN_REDIS_PREFIX: 'n1:', TONGBAN_REDIS_CLUSTER_NODES: 'a:1' })), '{n1:bull}')
  t.equal(slotTag({ isCluster: false }, 'g1'), 'g1')
  t.equal(slotTag({ isCluster: true }, 'g1'), '{g1}')
})

t.test('hostile host lists are refused with the variable named', async (t) => {
  for (const bad of ['localhost', 'a:b', ':26379', 'a:1,,b', 'a:1;rm -rf', 'a:99999999', 'a:1 b:2']) {
    t.throws(() => cfg({ TONGBAN_REDIS_SENTINELS: bad }), /TONGBAN_REDIS_SENTINELS|sentinels/, `sentinels ${JSON.stringify(bad)}`)
    t.throws(() => cfg({ TONGBAN_REDIS_CLUSTER_NODES: bad }), /TONGBAN_REDIS_CLUSTER_NODES|clusterNodes/, `cluster nodes ${JSON.stringify(bad)}`)
  }
  t.throws(() => parseHostPorts('a:0', 'X'), /X: expected host:port/)
  t.throws(() => parseHostPorts('a:65536', 'X'), /X: expected host:port/)
  t.same(parseHostPorts('[::1]:26379, b.example:1', 'X'), [{ host: '::1', port: 26379 }, { host: 'b.example', port: 1 }])
  t.throws(() => cfg({ TONGBAN_REDIS_WAIT_REPLICAS: '-1' }))
  t.throws(() => cfg({ TONGBAN_REDIS_WAIT_MS: '5' }))
})

t.test('a write no replica acknowledges fails closed (standalone Redis has none)', async (t) => {
  const prefix = `${uniqueName('wait')}:`
  const redis = createRedis(cfg({ TONGBAN_REDIS_PREFIX: prefix }))
  await redis.connect()
  t.teardown(async () => {
    redis.disconnect()
    await clearRedis(prefix)
  })
  const none = { replicas: 1, timeoutMs: 50 }
  await t.rejects(writeReplicated(redis, none, (p) => void p.set('k', '1')), { name: 'NotReplicatedError', message: /reached 0 of 1 replicas/ }, 'WAIT 1 with no replica: rejected')
  t.equal(await redis.get('k'), '1', 'the write itself ran on the master (counted, not acted on)')
  t.equal(await writeReplicated(redis, { replicas: 0, timeoutMs: 50 }, (p) => void p.set('k2', '2')), 'OK', 'WAIT 0: the reply')
  const quota = new QuotaAdmissions(redis, none)
  await t.rejects(quota.admit('g-wait', 5), { name: 'NotReplicatedError', message: /reached 0 of 1 replicas/ }, 'a quota admission is refused, so the query fails closed (QUOTA_UNAVAILABLE)')
})
