// Regenerates test/vectors/evidence-walkthrough.json: one real answer of a test node
// (POST /v1/verify/identity over loopback HTTP), its Tongban-Evidence header and exact body,
// and the node and CA certificates it chains to. docs/evidence.md walks through this vector;
// test/evidence/walkthrough.test.ts recomputes every value the document shows.
//   node --import tsx scripts/gen-evidence-walkthrough.ts
import { writeFileSync } from 'node:fs'
import { startNode, context } from '../test/helpers/harness.js'
import { samplePersons } from '../dev/providers/population.js'

// A collection window long enough that five concurrent answers share one batch: the chosen
// answer then has a real inclusion path (with a carried node) instead of an empty one.
const h = await startNode({ tag: 'walkthrough', env: { TONGBAN_AUDIT_BATCH_WINDOW_MS: '200' } })
try {
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (h.app.server.address() as { port: number }).port
  const token = await h.token('jn-civil-affairs')
  const persons = samplePersons(5)
  const answers = await Promise.all(persons.map(async (p) => {
    const requestBody = JSON.stringify({ idNumber: p.idNumber, name: p.name })
    const res = await fetch(`http://127.0.0.1:${port}/v1/verify/identity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...context() },
      body: requestBody,
    })
    const body = await res.text()
    if (res.status !== 200) throw new Error(`verify: ${res.status} ${body}`)
    const evidence = res.headers.get('tongban-evidence')!
    const e = JSON.parse(Buffer.from(evidence, 'base64url').toString('utf8'))
    return { requestBody, res, body, evidence, index: e.index as number, size: e.size as number }
  }))
  // The last record of a batch of 5: it has no sibling for two levels, so its path is the
  // single hash of leaves 0–3.
  const chosen = answers.find((a) => a.size === 5 && a.index === 4)
  if (!chosen) throw new Error(`no batch of 5: ${answers.map((a) => `${a.index}/${a.size}`).join(' ')}`)
  const { requestBody, res, body, evidence } = chosen
  const node = (await h.app.inject({ method: 'GET', url: '/v1/node' })).json()
  const vector = {
    about:
      'One real answer of a test node (scripts/gen-evidence-walkthrough.ts): POST /v1/verify/identity of a synthetic person of dev/providers/population.ts. docs/evidence.md walks through it; test/evidence/walkthrough.test.ts recomputes every value shown there.',
    request: { method: 'POST', path: '/v1/verify/identity', headers: context(), body: requestBody },
    response: {
      status: res.status,
      contentType: res.headers.get('content-type'),
      evidence,
      body,
    },
    nodeCertificate: node.certificate,
    caCertificate: node.caCertificate,
    kid: node.kid,
  }
  writeFileSync(new URL('../test/vectors/evidence-walkthrough.json', import.meta.url), JSON.stringify(vector, null, 2) + '\n')
  console.log('written', body)
} finally {
  await h.close()
}
