// The container files, read as data: the compose file wires the six simulated upstreams
// and points the gateway at each, and the image's final stage runs plain JavaScript
// (no tsx, no esbuild) with the workbench built in the build stage.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { fileURLToPath } from 'node:url'

// Only files are read here: no node is started, so the harness is not imported.
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

type Service = { command?: string[]; environment?: Record<string, string>; depends_on?: Record<string, unknown> }
const compose = parse(readFileSync(join(ROOT, 'deploy/docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> }
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')

// [provider folder in dev/providers, the catalogue's upstream env name]
const UPSTREAMS = [
  ['identity', 'TONGBAN_UPSTREAM_MPS_IDENTITY'],
  ['property', 'TONGBAN_UPSTREAM_NR_PROPERTY'],
  ['tax', 'TONGBAN_UPSTREAM_TAX_CERTIFICATES'],
  ['degree', 'TONGBAN_UPSTREAM_EDU_CREDENTIALS'],
  ['social-security', 'TONGBAN_UPSTREAM_HRSS_SOCIAL_SECURITY'],
  ['nanjing-property', 'TONGBAN_UPSTREAM_NJ_PROPERTY'],
]

t.test('compose: six simulated upstreams, the gateway pointing at each', async (t) => {
  const gateway = compose.services.gateway
  t.ok(gateway, 'a gateway service')
  for (const [folder, env] of UPSTREAMS) {
    const entry = `dist/dev/providers/${folder}/main.js`
    const found = Object.entries(compose.services).filter(([, s]) => s.command?.includes(entry))
    t.equal(found.length, 1, `one service runs ${entry}`)
    if (!found.length) continue
    const [name, service] = found[0]
    const port = service.environment?.PORT
    t.ok(port && service.environment?.HOST === '0.0.0.0', `${name} listens on all interfaces, on its PORT`)
    t.equal(gateway.environment?.[env], `http://${name}:${port}`, `${env} names ${name}`)
    t.ok(gateway.depends_on?.[name], `the gateway starts after ${name}`)
  }
})

t.test('Dockerfile: tsc and the workbench in the build stage, no tsx in the final stage', async (t) => {
  const stages = dockerfile.split(/^FROM /m).slice(1)
  t.ok(stages.length >= 2, 'a build stage and a runtime stage')
  const [build, final] = [stages[0], stages[stages.length - 1]]
  t.match(build, /npm run build/)
  t.match(build, /node scripts\/build-workbench\.mjs --force/)
  for (const c of ['COPY schemas schemas', 'COPY web web', 'COPY scripts/build-workbench.mjs scripts/']) t.ok(build.includes(c), c)
  t.match(build, /npm prune --omit=dev/)
  t.notMatch(final, /tsx|esbuild/, 'the final stage never names tsx or esbuild')
  t.notMatch(final, /src\/console\/static/, 'the old console folder is gone')
  const cmd = /^CMD \[(.*)\]$/m.exec(final)
  t.ok(cmd && /"node"/.test(cmd[1]) && /"dist\/src\/server\.js"/.test(cmd[1]), 'runs node dist/…')
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  t.notOk(pkg.dependencies?.tsx, 'tsx is not a runtime dependency (npm prune --omit=dev removes it)')
  t.ok(pkg.devDependencies?.tsx)
})
