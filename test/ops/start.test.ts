// `npm start` as an operator's process manager runs it: through `sh -c` (as npm does), on its
// own ports, schema and Redis prefix; ready when /readyz says so. Then the shell is sent
// SIGTERM, which a shell does not pass on to its child: every process npm start began must
// still stop (the gateway gracefully, sealing its last batch) and free its port.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import pg from 'pg'
import { ROOT, PG_URL, clearRedis, uniqueName } from '../helpers/harness.js'
import { waitFor } from '../helpers/tiers.js'
import { freePort } from '../../scripts/free-port.mjs'

// Installs nothing on a prepared checkout, but starts nine processes on a shared machine.
t.setTimeout(240_000)

const NAMES = ['TONGBAN_PORT', 'PROVIDER_PORT', 'PROPERTY_PORT', 'TAX_PORT', 'DEGREE_PORT', 'SOCIAL_SECURITY_PORT', 'NJ_PROPERTY_PORT', 'LICENCE_LIBRARY_PORT', 'DEV_OIDC_PORT', 'HAPROXY_STATS_PORT']
const ports: Record<string, number> = {}
for (const n of NAMES) {
  let p = await freePort()
  while (Object.values(ports).includes(p)) p = await freePort()
  ports[n] = p
}
const schema = uniqueName('start')
const env = {
  ...process.env,
  ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
  TONGBAN_PG_SCHEMA: schema,
  TONGBAN_REDIS_PREFIX: `${schema}:`,
  TONGBAN_STATE_FILE: join(mkdtempSync(join(tmpdir(), 'tongban-start-')), 'node.json'),
}
const db = new pg.Pool({ connectionString: PG_URL, max: 1 })
t.teardown(async () => {
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
  await db.end()
  await clearRedis(`${schema}:`).catch(() => {})
})

const listening = (port: number) => new Promise<boolean>((resolve) => {
  const s = net.connect(port, '127.0.0.1')
  s.once('connect', () => (s.destroy(), resolve(true)))
  s.once('error', () => resolve(false))
})

// Its own process group: whatever is left if the test fails is killed with it (teardown).
const sh = spawn('sh', ['-c', 'node scripts/start.mjs; true'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
t.teardown(() => {
  try {
    process.kill(-sh.pid!, 'SIGKILL')
  } catch {
    /* the group is gone: nothing was left behind */
  }
})
let output = ''
sh.stdout.on('data', (d) => (output += d))
sh.stderr.on('data', (d) => (output += d))
const base = `http://127.0.0.1:${ports.TONGBAN_PORT}`

t.test('up: ready, with the simulated departments on their ports', async (t) => {
  await waitFor('npm start to be ready', async () => {
    const r = await fetch(`${base}/readyz`).catch(() => null)
    return r?.status === 200
  }, 180_000).catch((e) => { throw new Error(`${e.message}\n${output.slice(-3000)}`) })
  for (const n of NAMES.filter((n) => n !== 'HAPROXY_STATS_PORT')) t.ok(await listening(ports[n]), `${n} ${ports[n]} listens`)
})

t.test('SIGTERM to the shell: every process stops and frees its port', async (t) => {
  sh.kill('SIGTERM')
  await waitFor('every port to be free', async () => {
    for (const n of NAMES) if (await listening(ports[n])) return false
    return true
  }, 60_000).catch((e) => { throw new Error(`${e.message}\n${output.slice(-3000)}`) })
  t.pass('no port is held')
  await waitFor('the gateway to report its graceful stop', async () => /the gateway stopped \(exit code 0\)/.test(output), 30_000)
  t.match(output, /parent process .* is gone: stopping as for SIGTERM/, 'the start script saw its parent go')
})
