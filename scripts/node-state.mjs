// The state file through which the `tongban` command finds the nodes `npm start` runs:
// { "<port>": { url, pid, startedAt } } (src/cli/node-url.ts reads it). Written whole
// through a temporary file and a rename, so a reader never sees half of it.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export function readStates(file) {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'))
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {}
  } catch {
    return {}
  }
}

function writeStates(file, states) {
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(states, null, 2) + '\n')
  renameSync(tmp, file)
}

/** Records that `pid` serves `url` on `port`. */
export function recordNode(file, port, url, pid = process.pid) {
  writeStates(file, { ...readStates(file), [String(port)]: { url, pid, startedAt: new Date().toISOString() } })
}

/** Removes the entry of `port` if it is still this process's. */
export function forgetNode(file, port, pid = process.pid) {
  const states = readStates(file)
  if (states[String(port)]?.pid !== pid) return
  delete states[String(port)]
  writeStates(file, states)
}
