// Builds the workbench front end (web/workbench, Vite) into dist/workbench when any of its
// sources (or the catalogue schema its forms are made from) is newer than the last build.
// Used by `npm start`, `npm test` and the Docker image; `--force` builds regardless.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SOURCES = [join(ROOT, 'web/workbench'), join(ROOT, 'schemas/catalog-entry.schema.json')]
const OUTPUT = join(ROOT, 'dist/workbench/index.html')

function newest(path) {
  const s = statSync(path)
  if (!s.isDirectory()) return s.mtimeMs
  let m = 0
  for (const e of readdirSync(path)) if (e !== 'node_modules' && e !== 'dist') m = Math.max(m, newest(join(path, e)))
  return m
}

export function workbenchIsCurrent() {
  return existsSync(OUTPUT) && statSync(OUTPUT).mtimeMs >= Math.max(...SOURCES.map(newest))
}

export async function buildWorkbench({ log = console.log, force = false } = {}) {
  if (!force && workbenchIsCurrent()) return false
  log('building the workbench (web/workbench → dist/workbench)')
  const { build } = await import('vite')
  await build({ configFile: join(ROOT, 'web/workbench/vite.config.mjs'), logLevel: 'warn' })
  return true
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await buildWorkbench({ force: process.argv.includes('--force') })
}
