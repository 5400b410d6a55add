// Process entry: start the gateway; on SIGTERM/SIGINT drain (http.drainMs: /readyz 503 while
// still serving), stop accepting, let in-flight requests finish, seal the last audit batch,
// close the pools, exit 0.
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config/index.js'
import { checkTopology } from './tiers/topology.js'

let config
try {
  config = loadConfig()
  checkTopology(config)
} catch (e) {
  console.error(e instanceof ConfigError ? `tongban: ${e.message}` : e)
  process.exit(2)
}

const app = await buildApp(config)
let closing = false
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    if (closing) return
    closing = true
    // Behind a load balancer: first tell it (/readyz 503) and keep serving until it has
    // stopped sending, so no request finds the port closed or a 503 NODE_SHUTTING_DOWN.
    if (config.http.drainMs > 0) {
      app.startDraining()
      app.log.info({ signal, drainMs: config.http.drainMs }, 'draining: /readyz answers 503; serving what still arrives')
      await new Promise((r) => setTimeout(r, config.http.drainMs))
    }
    app.log.info({ signal }, 'shutting down: finishing in-flight requests and sealing the last batch')
    const timer = setTimeout(() => {
      app.log.error('shutdown took longer than 30 s; exiting')
      process.exit(1)
    }, 30_000)
    timer.unref()
    // Node closes idle keep-alive connections only once, when close() starts; connections
    // that finish their request later would hold the process until their keep-alive
    // timeout. Sweep them as they become idle.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50)
    sweep.unref()
    try {
      await app.close()
      process.exit(0)
    } catch (e) {
      app.log.error({ err: e }, 'shutdown failed')
      process.exit(1)
    }
  })
}

try {
  await app.listen({ host: config.http.host, port: config.http.port })
} catch (e) {
  app.log.error({ err: e }, 'could not start')
  process.exit(1)
}
