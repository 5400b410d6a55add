// The baseline of the benchmark: a bare Fastify + @fastify/reply-from proxy to the same
// upstream, with the gateway's routes and nothing else (no token, policy, quota, audit,
// logging). Prints `READY {"port":n}`.
//   IDENTITY_URL=http://… PROPERTY_URL=http://… node --import tsx bench/baseline-proxy.ts
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'

const identity = process.env.IDENTITY_URL
const property = process.env.PROPERTY_URL
if (!identity || !property) {
  console.error('IDENTITY_URL and PROPERTY_URL are required')
  process.exit(2)
}

const app = Fastify({ logger: false })
// One reply-from (one pooled undici client) per upstream, as the gateway has.
await app.register(async (scope) => {
  await scope.register(replyFrom, { base: identity, undici: { connections: 128, pipelining: 1 } })
  scope.post('/v1/verify/identity', (_request, reply) => reply.from('/v1/identity/verify'))
})
await app.register(async (scope) => {
  await scope.register(replyFrom, { base: property, undici: { connections: 128, pipelining: 1 } })
  // 103002/00001 → /v1/property/verify, 103002/00002 → /v1/property/detail
  scope.post<{ Params: { code: string; operation: string } }>('/v1/resources/:code/:operation', (request, reply) =>
    reply.from(request.params.code.endsWith('00001') ? '/v1/property/verify' : '/v1/property/detail'),
  )
  scope.post('/v1/verify/property', (_request, reply) => reply.from('/v1/property/verify'))
})
// HAProxy's health check (bench/replicas.ts puts bare proxies behind it as it does replicas).
app.get('/readyz', async () => ({ status: 'ready' }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
console.log(`READY ${JSON.stringify({ port: (app.server.address() as { port: number }).port })}`)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    await app.close()
    process.exit(0)
  })
}
