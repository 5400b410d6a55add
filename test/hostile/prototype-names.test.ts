// Client-chosen names that are also Object.prototype's own (constructor, __proto__,
// hasOwnProperty, toString, …) sent through every route parameter, query-string field and
// string body field of every route the running app has, and through the context headers of
// the query routes. A name looked up on a plain object (`obj[name]`, `name in obj`) used to
// find the prototype's function and answer 500 INTERNAL (an operation named `constructor`).
// Every answer must be below 500 and, when an error, problem+json with a code.
import t from 'tap'
import { startNode } from '../helpers/harness.js'
import { startDevOidc, peopleEnv } from '../helpers/oidc.js'
import { roleTokens } from '../helpers/routes.js'
import { runProbes, sweepProbes } from '../helpers/sweep.js'

t.setTimeout(600_000)

// The sign-in routes are swept too: with a real provider they answer as in production
// (without one, 503 AUTH_SIGNIN_UNAVAILABLE is their documented answer).
const oidc = await startDevOidc()
const h = await startNode({ tag: 'protonames', env: peopleEnv(oidc.issuer) })
t.teardown(async () => {
  await h.close()
  await oidc.close()
})

const NAMES = Object.getOwnPropertyNames(Object.prototype)
const tokens = await roleTokens(h.token)

const { probes, seen } = sweepProbes(h.app, tokens, NAMES)

t.test('the sweep covers the routes that take names', async (t) => {
  const keys = [...seen]
  for (const k of ['POST /v1/resources/:code/:operation', 'POST /v1/verify/:service', 'GET /v1/catalog/resources/:code', 'GET /v1/audit/records/:id', 'POST /v1/batches']) {
    t.ok(keys.includes(k), `${k} is swept`)
  }
  t.ok(probes.length > 1000, `${probes.length} requests`)
})

t.test('no Object.prototype name answers 5xx; every refusal is problem+json with a code', async (t) => {
  const failures = await runProbes(h.app, probes)
  t.same(failures.slice(0, 30), [], `${failures.length} of ${probes.length} answers failed`)
})
