// What the multi-node tests share: catalogue entries from catalog/, a catalogue directory of
// a node's own entries, and waiting for something that travels between nodes (sync,
// queued messages, checkpoint pushes).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './harness.js'

/** A catalogue entry of catalog/ (a fresh copy: change it freely). */
export const entryFile = (name: string): Record<string, any> => JSON.parse(readFileSync(join(ROOT, 'catalog', name), 'utf8'))

/** A temporary catalogue directory holding these entries (TONGBAN_CATALOG_DIR of one node). */
export function catalogDir(entries: Array<Record<string, any>>, tag = 'tiers'): string {
  const dir = mkdtempSync(join(tmpdir(), `tongban-${tag}-`))
  for (const e of entries) writeFileSync(join(dir, `${e.code.replace('/', '-')}.json`), JSON.stringify(e, null, 2))
  return dir
}

/** Polls `f` every 100 ms until it is true; throws naming `what` after `ms`. */
export async function waitFor(what: string, f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await f()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}
