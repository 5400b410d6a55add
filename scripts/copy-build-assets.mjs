// After `tsc -p tsconfig.build.json`: what the compiled code reads next to itself and tsc does
// not copy — the SQL migrations (src/stores/migrate.ts reads ./migrations beside it) and the
// gateway's Node flags (src/tiers/local-tree.ts imports scripts/gateway-flags.mjs).
import { cpSync, mkdirSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const from = join(ROOT, 'src/stores/migrations')
const to = join(ROOT, 'dist/src/stores/migrations')
mkdirSync(to, { recursive: true })
const files = readdirSync(from).filter((f) => f.endsWith('.sql'))
for (const f of files) cpSync(join(from, f), join(to, f))
console.log(`copied ${files.length} migrations to dist/src/stores/migrations`)
mkdirSync(join(ROOT, 'dist/scripts'), { recursive: true })
cpSync(join(ROOT, 'scripts/gateway-flags.mjs'), join(ROOT, 'dist/scripts/gateway-flags.mjs'))
