// Strings no store can hold — NUL (PostgreSQL refuses it in text and jsonb) and unpaired
// UTF-16 surrogates — through every route parameter, query-string field and key, string body
// field and context header the running app has. They used to fail in a store and answer 5xx
// (a search filter 500 INTERNAL, a batch's items 503 BATCH_STORE_UNAVAILABLE). Every answer
// must be below 500, a refusal problem+json with a code, and the audit log stay whole.
import t from 'tap'
import { startNode } from '../helpers/harness.js'
import { startDevOidc, peopleEnv } from '../helpers/oidc.js'
import { roleTokens } from '../helpers/routes.js'
import { runProbes, sweepProbes } from '../helpers/sweep.js'
import { verifyDatabase } from '../../src/auditor/integrity.js'

t.setTimeout(600_000)

// The sign-in routes are swept too: with a real provider they answer as in production
// (without one, 503 AUTH_SIGNIN_UNAVAILABLE is their documented answer).
const oidc = await startDevOidc()
const h = await startNode({ tag: 'unstorable', env: peopleEnv(oidc.issuer) })
t.teardown(async () => {
  await h.close()
  await oidc.close()
})

const VALUES = ['\u0000', 'a\u0000b', '\ud800', 'x\udfffy']
const tokens = await roleTokens(h.token)
const { probes } = sweepProbes(h.app, tokens, VALUES)

t.test('no unstorable string answers 5xx; every refusal is problem+json with a code', async (t) => {
  t.ok(probes.length > 300, `${probes.length} requests`)
  const failures = await runProbes(h.app, probes)
  t.same(failures.slice(0, 30), [], `${failures.length} of ${probes.length} answers failed`)
})

t.test('the audit log stays whole: every batch sealed, every record hashing to its leaf', async (t) => {
  await h.app.sealer.flush()
  const report = await verifyDatabase(h.app.db, { chain: h.config.replicaId, caPem: h.app.identity.caPem, certificates: [h.app.identity.certPem] })
  t.ok(report.ok, JSON.stringify(report.firstFailure ?? {}))
  t.ok(report.records > 0, `${report.records} records checked`)
})
