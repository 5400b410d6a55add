// The form parser (application/x-www-form-urlencoded) is the token endpoint's alone: it
// used to be registered for the whole app, so the verify and resource routes took form
// bodies too. Every other POST and PUT route of the running app answers 415.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'
import { appRoutes, roleTokens, tokenFor } from '../helpers/routes.js'

const h = await startNode({ tag: 'formbody' })
t.teardown(() => h.close())
const tokens = await roleTokens(h.token)

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString()
const FILL: Record<string, string> = { code: '101001%2F00001', category: '101001', seq: '00001', operation: 'verify', service: 'identity', id: '01JZZZZZZZZZZZZZZZZZZZZZZZ' }

t.test('the token endpoint takes a form body', async (t) => {
  const res = await h.app.inject({
    method: 'POST', url: '/v1/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: h.assertion('jn-civil-affairs') }),
  })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().token_type, 'Bearer')
})

t.test('every other POST and PUT route answers 415 INPUT_UNSUPPORTED_MEDIA_TYPE to a form body', async (t) => {
  const routes = appRoutes(h.app).filter((r) => (r.method === 'POST' || r.method === 'PUT') && r.url !== '/v1/oauth/token')
  t.ok(routes.some((r) => r.url === '/v1/verify/identity') && routes.some((r) => r.url === '/v1/resources/:code/:operation'), 'the query routes are among them')
  for (const r of routes) {
    const url = r.url.replace(/:([A-Za-z]+)/g, (_m, p: string) => (Object.hasOwn(FILL, p) ? FILL[p] : 'x'))
    const res = await h.app.inject({
      method: r.method as 'POST' | 'PUT', url,
      headers: { authorization: `Bearer ${tokenFor(tokens, r.method, r.url)}`, 'content-type': 'application/x-www-form-urlencoded', 'if-match': '"1"', ...context() },
      payload: form({ idNumber: '110105194912310021', name: 'x', resource: '101001/00001' }),
    })
    t.equal(res.statusCode, 415, `${r.method} ${r.url}: ${res.body.slice(0, 120)}`)
    t.equal(res.json().code, 'INPUT_UNSUPPORTED_MEDIA_TYPE', `${r.method} ${r.url}`)
  }
})
