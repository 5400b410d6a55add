// A gateway on Redis Cluster (three masters, three replicas; scripts/redis-topology.mjs): queries,
// replay refusal, exact quotas, rate limits and BullMQ jobs. Every Lua script and every
// BullMQ queue stays in one slot (hash-tagged keys and BullMQ prefix), else Redis would
// answer CROSSSLOT and these would fail.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster } from 'ioredis'
import { startRedisCluster } from '../../scripts/redis-topology.mjs'
import { bullPrefix } from '../../src/stores/redis.js'
import type { Harness } from '../helpers/harness.js'
import { nodeOn, runScenario } from '../helpers/redis-scenario.js'

t.test('a gateway on Redis Cluster', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-cluster-'))
  const topo = await startRedisCluster({ dir })
  const reader = new Cluster(topo.nodes)
  let h: Harness | undefined
  t.teardown(async () => {
    await h?.close()
    reader.disconnect()
    await topo.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  h = await nodeOn('cluster', topo)
  await runScenario(t, h, {
    env: topo.env,
    cluster: true,
    // The master of the key's slot (the quota waited for its replica: WAIT).
    readEverywhere: async (key) => [await reader.get(key)],
  })

  await t.test("BullMQ's keys and the replay keys are each in one slot", async (t) => {
    const prefix = bullPrefix(h!.config.redis)
    t.match(prefix, /^\{.+\}$/, `the BullMQ prefix is a hash tag (${prefix})`)
    const bull: string[] = []
    const replay: string[] = []
    for (const n of reader.nodes('master')) {
      bull.push(...(await n.keys(`${prefix}:*`)))
      replay.push(...(await n.keys(`${h!.config.redis.prefix}{replay}:*`)))
    }
    t.ok(bull.length > 0, `BullMQ keys exist (${bull.length})`)
    const slotOf = (k: string) => reader.cluster('KEYSLOT', k) as Promise<number>
    t.equal(new Set(await Promise.all(bull.map(slotOf))).size, 1, 'all in one slot')
    t.ok(replay.some((k) => k.endsWith('{replay}:epoch')), 'the replay epoch marker')
    t.ok(replay.length > 1, `jtis beside it (${replay.length - 1})`)
    t.equal(new Set(await Promise.all(replay.map(slotOf))).size, 1, 'replay keys in one slot')
    t.equal(h!.app.replicatedWrites.replicas, 1, 'quota and replay writes wait for one replica')
  })
})
