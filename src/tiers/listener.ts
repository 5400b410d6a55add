// The node listener: a second, TLS-only server of the same Fastify app, for node traffic.
// It demands a client certificate chained to the trusted CA (mutual TLS) and serves only
// the node routes (/v1/tiers/…) and /healthz; the consumer API stays on the main port.
// Routes behind it learn who called from the peer certificate (peerNodeOf).
import { createServer, type Server } from 'node:https'
import type { TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem } from '../problem.js'
import { nodeIdOfCert } from './assertion.js'

export interface NodeListener {
  port: number
  close(): Promise<void>
}

export async function startNodeListener(
  app: FastifyInstance,
  opts: { host: string; port: number; certPem: string; keyPem: string; caPem: string },
): Promise<NodeListener> {
  const server: Server = createServer(
    {
      cert: opts.certPem,
      key: opts.keyPem,
      ca: opts.caPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      keepAliveTimeout: 10_000,
    },
    (req, res) => {
      const url = req.url ?? '/'
      if (!url.startsWith('/v1/tiers/') && url !== '/healthz') {
        res.writeHead(404, { 'content-type': 'application/problem+json' })
        res.end(JSON.stringify({ type: 'urn:tongban:problem:NODE_ROUTE_UNKNOWN', title: 'Not Found', status: 404, code: 'NODE_ROUTE_UNKNOWN', detail: 'the node listener serves /v1/tiers/… only' }))
        return
      }
      app.routing(req, res)
    },
  )
  server.on('tlsClientError', () => {}) // a peer without a trusted certificate: the handshake fails, nothing else
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  let closing: Promise<void> | undefined
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
        // Requests still running get a moment to finish; then the sockets go.
        setTimeout(() => server.closeAllConnections(), 2000).unref()
      })),
  }
}

/** The node id of the mTLS peer of this request; 403 when it did not come over the node listener. */
export function peerNodeOf(request: FastifyRequest): string {
  const socket = request.raw.socket as TLSSocket | undefined
  if (!socket || !(socket as { encrypted?: boolean }).encrypted || !socket.authorized) {
    throw new Problem(403, 'NODE_AUTH_REQUIRED', 'node routes are served on the node listener only, to peers with a node certificate (mutual TLS)')
  }
  const id = nodeIdOfCert(socket.getPeerCertificate() as unknown as { subject: Record<string, string> })
  if (!id) throw new Problem(403, 'NODE_AUTH_REQUIRED', 'the client certificate is not a node certificate')
  return id
}
