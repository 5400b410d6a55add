// The docs name the files they describe (README.md, docs/*.md): every repository path they
// name exists, so a move or a rename cannot leave a reader looking for a file that is gone.
// Paths inside other packages' sources (sm-crypto-v2's src/sm2/rng.ts), built output
// (dist/…, *.js) and the files a guide has the reader write are not the repository's.
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/harness.js'

const PATH = /(?<![\w/.-])(?:test|src|scripts|dev|bench|packages|web|deploy|catalog|config|schemas|examples)\/[A-Za-z0-9_./{}-]+\.(?:ts|mjs|sql|json|vue|py|java|sh|cfg|yml)\b/g
const NOT_OURS = new Set([
  'src/sm2/rng.ts', // sm-crypto-v2's own source (docs/gm.md)
  'catalog/102001-00001.json', // the entry docs/adding-a-service.md has the reader write
])

function namedPaths(text: string): string[] {
  return [...new Set(text.match(PATH) ?? [])].filter((p) => !p.includes('{') && !NOT_OURS.has(p))
}

const docs = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

t.test('every path the docs name exists', async (t) => {
  let named = 0
  const missing: string[] = []
  for (const doc of docs) {
    for (const p of namedPaths(readFileSync(join(ROOT, doc), 'utf8'))) {
      named++
      if (!existsSync(join(ROOT, p))) missing.push(`${doc}: ${p}`)
    }
  }
  t.ok(named > 200, `the docs name ${named} paths`)
  t.same(missing, [], 'none is missing')
})

t.test('the check can fail: a path that is gone is found', async (t) => {
  const gone = namedPaths('see `test/tiers-relay.test.ts` and src/tiers/relay.ts').filter((p) => !existsSync(join(ROOT, p)))
  t.same(gone, ['test/tiers-relay.test.ts'])
})
