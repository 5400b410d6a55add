// The first run without traps: the CLI finds the node by TONGBAN_URL, TONGBAN_PORT or the
// state file npm start writes, and a node it cannot reach is named with the cause — exit 1,
// nothing on stdout, so `$(tongban token …)` never yields an empty bearer silently.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../scripts/free-port.mjs'
import { resolveNodeUrl } from '../../src/cli/node-url.js'
import { loadConfig } from '../../src/config/index.js'
import { run as tokenCommand } from '../../src/cli/token.js'
import { run as systemsCommand } from '../../src/cli/systems.js'
import { run as nodeCommand } from '../../src/cli/node.js'


const dir = mkdtempSync(join(tmpdir(), 'tongban-first-run-'))
const stateFile = join(dir, 'node.json')
const baseEnv = { TONGBAN_STATE_FILE: stateFile } as NodeJS.ProcessEnv

const collect = async (run: (args: string[], io: { out(s: string): void; err(s: string): void }) => Promise<number>, ...args: string[]) => {
  let stdout = ''
  let stderr = ''
  const code = await run(args, { out: (s) => (stdout += s + '\n'), err: (s) => (stderr += s + '\n') })
  return { code, stdout, stderr }
}

t.test('the order: --url, TONGBAN_URL, TONGBAN_PORT, the state file, the configuration', async (t) => {
  const resolve = (env: NodeJS.ProcessEnv, url?: string) => resolveNodeUrl({ url, env: { ...baseEnv, ...env }, config: loadConfig({ ...baseEnv, ...env }) })
  t.equal(resolve({}, 'http://a.example:1/').url, 'http://a.example:1', '--url wins, trailing slash dropped')
  t.equal(resolve({ TONGBAN_URL: 'http://b.example:2' }).from, 'TONGBAN_URL')
  t.equal(resolve({ TONGBAN_PORT: '18999' }).url, 'http://127.0.0.1:18999', 'TONGBAN_PORT names the local node')
  writeFileSync(stateFile, JSON.stringify({ 18777: { url: 'http://127.0.0.1:18777', pid: process.pid, startedAt: new Date().toISOString() } }))
  const fromState = resolve({})
  t.equal(fromState.url, 'http://127.0.0.1:18777', 'the node npm start recorded')
  t.match(fromState.from, /npm start/)
  writeFileSync(stateFile, '{not json')
  t.doesNotThrow(() => resolve({}), 'a damaged state file is ignored')
})

t.test('a node that does not listen: URL and cause named, exit 1, stdout empty', async (t) => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const token = await collect(tokenCommand, 'jn-civil-affairs', '--url', url)
  t.equal(token.code, 1)
  t.equal(token.stdout, '', 'nothing a shell would take for a token')
  t.match(token.stderr, url, 'the URL tried')
  t.match(token.stderr, /ECONNREFUSED/, 'the cause')
  t.notMatch(token.stderr, /^tongban token: fetch failed$/m)

  const systems = await collect(systemsCommand, 'list', '--url', url)
  t.equal(systems.code, 1)
  t.match(systems.stderr, url)
  t.match(systems.stderr, /ECONNREFUSED/)

  const status = await collect(nodeCommand, 'status', '--url', url)
  t.equal(status.code, 1)
  t.match(status.stderr, url)
  t.match(status.stderr, /ECONNREFUSED/)
})
