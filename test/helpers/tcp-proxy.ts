// A loopback TCP proxy the tests can cut, restore and slow down: a real way to make
// PostgreSQL, Redis or a neighbouring node unreachable or slow for one gateway without
// touching the shared server.
import net from 'node:net'

export interface TcpProxy {
  port: number
  /** Holds every chunk this long from now on, on open connections too, in order (a slow link). */
  delay(ms: number): void
  cut(): Promise<void>
  restore(): Promise<void>
  close(): Promise<void>
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>()
  let server: net.Server
  let port = 0
  let listening = false
  let delayMs = 0
  // Straight through (with backpressure) while there is no delay; otherwise each chunk is
  // held, never overtaking one held before it.
  const forward = (from: net.Socket, to: net.Socket) => {
    let lastDue = 0
    from.on('data', (chunk) => {
      const now = Date.now()
      if (delayMs === 0 && lastDue <= now) {
        if (!to.write(chunk)) {
          from.pause()
          to.once('drain', () => from.resume())
        }
        return
      }
      lastDue = Math.max(now + delayMs, lastDue)
      setTimeout(() => to.destroyed || to.write(chunk), lastDue - now).unref()
    })
  }
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      if (listening) return resolve()
      server = net.createServer((client) => {
        const upstream = net.connect(targetPort, targetHost)
        sockets.add(client).add(upstream)
        const drop = () => {
          client.destroy()
          upstream.destroy()
          sockets.delete(client)
          sockets.delete(upstream)
        }
        client.on('error', drop).on('close', drop)
        upstream.on('error', drop).on('close', drop)
        forward(client, upstream)
        forward(upstream, client)
      })
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as net.AddressInfo).port
        listening = true
        resolve()
      })
    })
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve()
      listening = false
      for (const s of sockets) s.destroy()
      sockets.clear()
      server.close(() => resolve())
    })
  await listen()
  return {
    get port() {
      return port
    },
    delay: (ms) => void (delayMs = ms),
    cut: stop,
    restore: listen,
    close: stop,
  }
}
