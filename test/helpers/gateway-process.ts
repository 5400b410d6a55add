// A gateway as a real OS process (src/server.ts), sharing a test node's database schema
// and Redis prefix: what replicas behind a load balancer are.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'undici'
import { ROOT, type Harness } from './harness.js'
import { freePort } from '../../scripts/free-port.mjs'

export interface GatewayProcess {
  base: string
  child: ChildProcess
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export { freePort }

export async function spawnGateway(h: Harness, replica: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...h.env, TONGBAN_PORT: String(port), TONGBAN_REPLICA_ID: `${h.schema}-${replica}`, TONGBAN_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const base = `http://127.0.0.1:${port}`
  // A loaded machine can take a while to start a process; never carry on with one not ready.
  let ready = false
  for (let i = 0; i < 600 && !ready; i++) {
    ready = await request(`${base}/readyz`).then((r) => (r.body.dump(), r.statusCode === 200), () => false)
    if (ready) break
    if (child.exitCode !== null) throw new Error(`gateway ${replica} exited: ${out}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  if (!ready) {
    child.kill('SIGKILL')
    throw new Error(`gateway ${replica} not ready after 60 s: ${out.slice(-2000)}`)
  }
  return {
    base,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode
      child.kill(signal)
      const [code] = await once(child, 'exit')
      return code
    },
  }
}
