// A port for a server that must be named before it starts (a node's URL in a topology, a
// Redis or PostgreSQL the test starts). Not one the OS picks (listen on 0): those come from
// the ephemeral range (32768–60999 on Linux), which every outgoing connection of every test
// process draws from too, so between picking and listening another process's connection may
// take it (EADDRINUSE). Below that range only servers listen; a random start spreads the
// processes that run at once, and each candidate is tried before it is handed out.
import net from 'node:net'

const LOW = 20000
const HIGH = 32767

const free = (port, host) =>
  new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, host, () => s.close(() => resolve(true)))
  })

/** A port below the ephemeral range nobody listens on now. */
export async function freePort(host = '127.0.0.1') {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1))
    if (await free(port, host)) return port
  }
  throw new Error(`no free port between ${LOW} and ${HIGH} on ${host}`)
}
