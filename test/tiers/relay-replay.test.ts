// Node links across a Redis restart without persistence: the province node on a redis-server
// of the test's own, called over mTLS by Nanjing (the test). A link used before the restart must not
// be taken again after it (its jti is forgotten, the replay store's epoch is not).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startNode, ROOT } from '../helpers/harness.js'
import { catalogDir } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { startOwnRedis } from '../helpers/own-redis.js'
import { samplePersons } from '../../dev/providers/population.js'
import { digest } from '../../src/evidence/evidence.js'
import { AssertionSigner, type ConsumerClaims } from '../../src/tiers/assertion.js'
import { EPOCH_ALLOWANCE_MS } from '../../src/auth/replay-store.js'

const JS = '320000'
const NJ = '320100'
const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')

t.test('a node link used before a Redis restart is refused after it; a fresh link is taken', async (t) => {
  const own = await startOwnRedis()
  const port = await freePort()
  const at = (p: number) => `https://127.0.0.1:${p}`
  // Only the province runs (the root: no parent to sync with); Nanjing is the test.
  const tree = [
    { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: at(port) },
    { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: at(await freePort()) },
  ]
  const province = await startNode({
    tag: 'replay_js',
    env: {
      TONGBAN_REDIS_URL: own.url,
      TONGBAN_NODE_ID: JS, TONGBAN_NODE_REGION: JS, TONGBAN_NODE_TIER: 'province', TONGBAN_NODE_NAME: 'replay test 320000',
      TONGBAN_NODE_PARENT: '', TONGBAN_TOPOLOGY: JSON.stringify(tree), TONGBAN_NODE_PORT: String(port),
      TONGBAN_CATALOG_DIR: catalogDir([], 'tiers'),
    },
  })

  const cityCert = pem(`node/${NJ}.crt.pem`)
  const cityKey = pem(`node/${NJ}.key.pem`)
  const asCity = new Agent({ connect: { ca: pem('ca.crt.pem'), cert: cityCert, key: cityKey } })
  // In this order: the node must close while its Redis still answers.
  t.teardown(async () => {
    await asCity.close()
    await province.close()
    await own.close()
  })
  const signer = new AssertionSigner(NJ, cityKey, cityCert)

  const p0 = samplePersons(1)[0]
  const body = JSON.stringify({ idNumber: p0.idNumber, name: p0.name })
  const code = encodeURIComponent('101001/00001')
  const claims = (): ConsumerClaims => ({
    sub: 'nj-housing', dept: '11320100MB00000342', region: NJ, purpose: 'HS-01', case: 'NJ-2026-1001',
    tgt: `resources/${code}/verify`, bd: digest(body),
  })
  const send = async (assertion: string, rid: string) => {
    const res = await request(`${at(port)}/v1/tiers/relay/resources/${code}/verify`, {
      method: 'POST', dispatcher: asCity, body,
      headers: { 'content-type': 'application/json', 'tongban-request-id': rid, 'tongban-assertion': assertion },
    })
    const text = await res.body.text()
    return { status: res.statusCode, json: JSON.parse(text) }
  }
  async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
    const end = Date.now() + timeoutMs
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  const rid = `replay-restart-${Date.now()}`
  const signedAt = Date.now()
  const link = signer.origin(JS, rid, claims())
  const first = await send(link, rid)
  t.not(first.json.code, 'NODE_ASSERTION_INVALID', `the link passes the checks (${first.status} ${first.json.code ?? ''})`)
  t.not(first.status, 401)
  const again = await send(link, rid)
  t.equal(again.json.code, 'NODE_ASSERTION_REPLAYED', 'before the restart: the jti is known')

  await until('the allowance has passed since the link was signed', () => Date.now() > signedAt + EPOCH_ALLOWANCE_MS + 1500)
  await own.restart()
  await until('the node reconnects to Redis', () => province.app.redis.status === 'ready')

  const after = await send(link, rid)
  t.equal(after.status, 401, 'the same link after the restart')
  t.equal(after.json.code, 'NODE_ASSERTION_BEFORE_REPLAY_WINDOW')
  const rid2 = `replay-restart-fresh-${Date.now()}`
  const fresh = await send(signer.origin(JS, rid2, claims()), rid2)
  t.not(fresh.status, 401, `a fresh link is taken (${fresh.status} ${fresh.json.code ?? ''})`)
})
