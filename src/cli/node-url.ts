// Which node a command talks to, and what to say when it cannot be reached. The order:
// --url, TONGBAN_URL, TONGBAN_PUBLIC_URL when set in the environment, TONGBAN_PORT (the
// node npm start recorded on that port, or http://127.0.0.1:<port>), the node npm start
// recorded (the state file, when exactly one recorded process is alive, else the newest),
// and last the configuration's node.publicUrl. `npm start` (scripts/start.mjs) writes the
// state file; `from` says which rule chose, so an error can tell the reader why that URL.
import { existsSync, readFileSync } from 'node:fs'
import { loadConfig, type Config } from '../config/index.js'
import { describeCause, TongbanError } from '../../packages/client/src/index.js'

export interface NodeState {
  url: string
  pid: number
  startedAt: string
}

/** The state file: `{ "<port>": NodeState }`, one entry per node `npm start` runs. */
export function readNodeStates(file: string): Record<string, NodeState> {
  if (!existsSync(file)) return {}
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'))
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {}
    return Object.fromEntries(Object.entries(v as Record<string, NodeState>).filter(([, s]) => typeof s?.url === 'string' && /^https?:\/\//.test(s.url)))
  } catch {
    return {}
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface NodeUrl {
  url: string
  /** Which rule chose it: '--url', 'TONGBAN_URL', 'TONGBAN_PORT', the state file's path, … */
  from: string
}

/** The node to call; `config` defaults to loadConfig() (which also reads TONGBAN_URL). */
export function resolveNodeUrl(o: { url?: string; env?: NodeJS.ProcessEnv; config?: Config } = {}): NodeUrl {
  const env = o.env ?? process.env
  const clean = (u: string) => u.replace(/\/+$/, '')
  if (o.url) return { url: clean(o.url), from: '--url' }
  const config = o.config ?? loadConfig(env)
  if (config.cli.url) return { url: clean(config.cli.url), from: 'TONGBAN_URL' }
  if (env.TONGBAN_PUBLIC_URL) return { url: clean(config.node.publicUrl), from: 'TONGBAN_PUBLIC_URL' }
  const states = readNodeStates(config.cli.stateFile)
  const port = env.TONGBAN_PORT || env.PORT
  // Port 0 (any free port) names no node to call.
  if (port && port !== '0') {
    const recorded = states[port]
    if (recorded) return { url: clean(recorded.url), from: `TONGBAN_PORT=${port} (${config.cli.stateFile})` }
    const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host
    return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, from: `TONGBAN_PORT=${port}` }
  }
  const running = Object.values(states).filter((s) => alive(s.pid))
  const pick = (running.length ? running : Object.values(states)).sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0]
  if (pick) return { url: clean(pick.url), from: `${config.cli.stateFile} (written by npm start)` }
  return { url: clean(config.node.publicUrl), from: 'the configuration (node.publicUrl)' }
}

/**
 * One line for a failed call to a node: the URL and the cause (ECONNREFUSED, ENOTFOUND,
 * timeout, TLS, HTTP status with the problem code), never a bare "fetch failed".
 */
export function describeFailure(e: unknown, url?: string): string {
  if (e instanceof TongbanError) {
    const detail = e.detail ?? ''
    const named = url && !detail.includes(url) ? `${url}: ` : ''
    return `${named}${e.code}${e.status ? ` (HTTP ${e.status})` : ''}${detail ? `: ${detail}` : ''}${e.requestId ? ` [request ${e.requestId}]` : ''}`
  }
  // fetch() and undici wrap the network error as `cause`.
  const err = e as Error & { cause?: unknown }
  const cause = err?.cause !== undefined ? describeCause(err.cause) : describeCause(e)
  return url ? `${url}: ${cause}` : cause
}
