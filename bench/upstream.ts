// The upstream of the benchmark: the simulated identity service and real-estate registry,
// without request logging, in one process of their own. Prints one line
// `READY {"identity":port,"property":port}` once both listen.
//   node --import tsx bench/upstream.ts
import { buildIdentityProvider } from '../dev/providers/identity/app.js'
import { buildPropertyProvider } from '../dev/providers/property/app.js'

const identity = buildIdentityProvider({ delayMs: Number(process.env.SIM_DELAY_MS ?? 0) })
const property = buildPropertyProvider({ delayMs: Number(process.env.SIM_DELAY_MS ?? 0) })
await identity.listen({ host: '127.0.0.1', port: Number(process.env.IDENTITY_PORT ?? 0) })
await property.listen({ host: '127.0.0.1', port: Number(process.env.PROPERTY_PORT ?? 0) })
const port = (app: typeof identity) => (app.server.address() as { port: number }).port
console.log(`READY ${JSON.stringify({ identity: port(identity), property: port(property) })}`)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    await Promise.all([identity.close(), property.close()])
    process.exit(0)
  })
}
