// A gateway on Redis Sentinel (one master, one replica, three sentinels; scripts/redis-topology.mjs):
// queries, replay refusal, exact quotas (the counter on the replica too: quota increments
// wait for it), rate limits and BullMQ jobs, all through ioredis' sentinel support.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cli, startRedisSentinel } from '../../scripts/redis-topology.mjs'
import type { Harness } from '../helpers/harness.js'
import { nodeOn, runScenario } from '../helpers/redis-scenario.js'

t.test('a gateway on Redis Sentinel', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-sentinel-'))
  const topo = await startRedisSentinel({ dir })
  let h: Harness | undefined
  t.teardown(async () => {
    await h?.close()
    await topo.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  h = await nodeOn('sentinel', topo)
  await runScenario(t, h, {
    env: topo.env,
    cluster: false,
    readEverywhere: async (key) => Promise.all([topo.masterPort, topo.replicaPort].map((p) => cli(p, 'GET', key).then((v: string) => v || null))),
  })

  await t.test('the node reached Redis through the sentinels', async (t) => {
    t.equal(h!.config.redis.sentinels, topo.env.TONGBAN_REDIS_SENTINELS)
    const clients = (await cli(topo.masterPort, 'CLIENT', 'LIST')).split('\n').filter((l: string) => l.includes(h!.schema))
    t.ok(clients.length >= 2, `the master serves the gateway's BullMQ connections (${clients.length} named)`)
    t.equal(h!.app.replicatedWrites.replicas, 1, 'writes that must survive a failover wait for one replica')
    t.not(h!.app.replicatedWrites.client, h!.app.redis, 'on a connection of their own (WAIT blocks it)')
  })
})
