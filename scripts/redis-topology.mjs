// Real Redis topologies for tests, drills and demos (docs/operations.md, "Scale-out: Redis"):
// - startRedisSentinel: one master, one replica, three sentinels (quorum 2);
// - startRedisCluster: three masters and three replicas, made with
//   `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`.
// redis-server and redis-cli come from PATH. Every process listens on 127.0.0.1 on a free
// port (or the one given by REDIS_MASTER_PORT, REDIS_REPLICA_PORT, REDIS_SENTINEL_PORT —
// the first of three — and REDIS_CLUSTER_PORT — the first of six), keeps its files under
// `dir`, and is ended by stop(). No persistence: these are throw-away servers.
import { spawn, execFile } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const HOST = '127.0.0.1'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

import { freePort } from './free-port.mjs'

export { freePort }

const portFrom = async (name, offset = 0) => (process.env[name] ? Number(process.env[name]) + offset : freePort())

/** redis-cli against one server; resolves with its stdout (trimmed). */
export async function cli(port, ...args) {
  const { stdout } = await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 10_000 })
  return stdout.trim()
}

/** Polls until `check` resolves truthy; says what it waited for when it gives up. */
async function until(what, check, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await check()
      if (v) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`redis topology: ${what} not reached within ${timeoutMs} ms${last ? ` (${last.message})` : ''}`)
    await sleep(50)
  }
}

const info = async (port, section) => {
  const text = await cli(port, 'INFO', section)
  return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]))
}

function spawnServer(args, log) {
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  child.on('error', (e) => log?.(`redis-server could not start (${e.message}); is it installed (apt-get install redis-server)?`))
  return child
}

async function kill(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

const serverArgs = (port, dir, extra = []) => [
  '--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no',
  '--protected-mode', 'no', '--logfile', join(dir, `redis-${port}.log`), ...extra,
]

/**
 * One master, one replica, three sentinels watching `masterName`. Resolves once the replica
 * is in sync and every sentinel knows the replica and the two other sentinels (so that a
 * failover can be agreed on at once).
 */
export async function startRedisSentinel({ dir, log = () => {}, masterName = 'mymaster', downAfterMs = 1000, failoverTimeoutMs = 5000 } = {}) {
  const base = join(dir, `redis-sentinel-${process.pid}-${Date.now().toString(36)}`)
  mkdirSync(base, { recursive: true })
  const children = []
  const masterPort = await portFrom('REDIS_MASTER_PORT')
  const replicaPort = await portFrom('REDIS_REPLICA_PORT')
  const sentinelPorts = [await portFrom('REDIS_SENTINEL_PORT', 0), await portFrom('REDIS_SENTINEL_PORT', 1), await portFrom('REDIS_SENTINEL_PORT', 2)]
  const stop = async () => {
    await Promise.all(children.map((c) => kill(c.child)))
    rmSync(base, { recursive: true, force: true })
  }
  try {
    const master = { role: 'master', port: masterPort, child: spawnServer(serverArgs(masterPort, base), log) }
    children.push(master)
    await until(`master on ${masterPort} answering`, async () => (await cli(masterPort, 'PING')) === 'PONG')
    const replica = { role: 'replica', port: replicaPort, child: spawnServer(serverArgs(replicaPort, base, ['--replicaof', HOST, String(masterPort)]), log) }
    children.push(replica)
    await until(`replica on ${replicaPort} in sync`, async () => (await info(replicaPort, 'replication')).master_link_status === 'up')
    for (const port of sentinelPorts) {
      const conf = join(base, `sentinel-${port}.conf`)
      writeFileSync(conf, [
        `port ${port}`, `bind ${HOST}`, `dir ${base}`, 'protected-mode no', `logfile ${join(base, `sentinel-${port}.log`)}`,
        `sentinel monitor ${masterName} ${HOST} ${masterPort} 2`,
        `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
        `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'))
      children.push({ role: 'sentinel', port, child: spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }) })
    }
    for (const port of sentinelPorts) {
      await until(`sentinel ${port} knows the replica and the other sentinels`, async () => {
        const replicas = await cli(port, 'SENTINEL', 'REPLICAS', masterName)
        const sentinels = await cli(port, 'SENTINEL', 'SENTINELS', masterName)
        return replicas.includes(String(replicaPort)) && sentinelPorts.filter((p) => p !== port).every((p) => sentinels.includes(String(p)))
      }, 60_000)
    }
    log(`redis sentinel: master ${masterPort}, replica ${replicaPort}, sentinels ${sentinelPorts.join(', ')}`)
    const sentinels = sentinelPorts.map((port) => ({ host: HOST, port }))
    return {
      masterName,
      sentinels,
      masterPort,
      replicaPort,
      /** Points a gateway at it (TONGBAN_REDIS_URL is then not used). */
      env: { TONGBAN_REDIS_SENTINELS: sentinels.map((s) => `${s.host}:${s.port}`).join(','), TONGBAN_REDIS_SENTINEL_NAME: masterName },
      /** The port of the master the sentinels name now. */
      async currentMasterPort() {
        for (const { port } of sentinels) {
          const out = await cli(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName).catch(() => '')
          const p = Number(out.split(/\s+/)[1])
          if (p) return p
        }
        return null
      },
      /** kill -9 of the server that is master now; resolves with its port once it is gone. */
      async killMaster() {
        const port = (await this.currentMasterPort()) ?? masterPort
        const c = children.find((x) => x.port === port && x.role !== 'sentinel')
        if (!c) throw new Error(`redis topology: no server of mine on ${port}`)
        await kill(c.child)
        log(`redis sentinel: master on ${port} killed (-9)`)
        return port
      },
      /**
       * Starts a killed server again on its port, empty (no persistence); the sentinels make
       * it a replica of the current master. Resolves once it is in sync.
       */
      async restartServer(port) {
        const c = children.find((x) => x.port === port && x.role !== 'sentinel')
        if (!c) throw new Error(`redis topology: no server of mine on ${port}`)
        await kill(c.child)
        c.child = spawnServer(serverArgs(port, base), log)
        await until(`server ${port} back as a replica in sync`, async () => (await info(port, 'replication')).master_link_status === 'up', 60_000)
        log(`redis sentinel: ${port} back as a replica`)
      },
      /** Resolves with the new master's port once the sentinels have promoted another server. */
      async waitForFailover(oldPort, timeoutMs = 60_000) {
        return until('a new master promoted', async () => {
          const p = await this.currentMasterPort()
          if (!p || p === oldPort) return null
          return (await info(p, 'replication')).role === 'master' ? p : null
        }, timeoutMs)
      },
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}

/**
 * Three masters and three replicas (`cluster-replicas 1`), each with its cluster bus on a
 * free port of its own. Resolves once every node reports `cluster_state:ok`, all slots assigned.
 */
export async function startRedisCluster({ dir, log = () => {}, masters = 3, replicas = 1, nodeTimeoutMs = 2000 } = {}) {
  const base = join(dir, `redis-cluster-${process.pid}-${Date.now().toString(36)}`)
  mkdirSync(base, { recursive: true })
  const count = masters * (1 + replicas)
  const children = []
  const stop = async () => {
    await Promise.all(children.map((c) => kill(c.child)))
    rmSync(base, { recursive: true, force: true })
  }
  try {
    const ports = []
    for (let i = 0; i < count; i++) ports.push(await portFrom('REDIS_CLUSTER_PORT', i))
    for (const port of ports) {
      const busPort = process.env.REDIS_CLUSTER_PORT ? port + 10_000 : await freePort()
      children.push({
        port,
        child: spawnServer(serverArgs(port, base, [
          '--cluster-enabled', 'yes', '--cluster-config-file', join(base, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-port', String(busPort),
        ]), log),
      })
    }
    for (const port of ports) await until(`cluster node ${port} answering`, async () => (await cli(port, 'PING')) === 'PONG')
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 })
    for (const port of ports) {
      await until(`cluster node ${port} ok`, async () => {
        const i = await cli(port, 'CLUSTER', 'INFO')
        return i.includes('cluster_state:ok') && i.includes('cluster_slots_assigned:16384') && i.includes(`cluster_known_nodes:${count}`)
      }, 60_000)
    }
    // Replicas in sync: a write that waits for one (WAIT 1) is acknowledged from the start.
    for (const port of ports) {
      await until(`cluster node ${port} replicating`, async () => {
        const r = await info(port, 'replication')
        return r.role === 'master' ? Number(r.connected_slaves) >= replicas : r.master_link_status === 'up'
      }, 60_000)
    }
    log(`redis cluster: ${masters} masters + ${masters * replicas} replicas on ${ports.join(', ')}`)
    const nodes = ports.map((port) => ({ host: HOST, port }))
    return {
      nodes,
      env: { TONGBAN_REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(',') },
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}
