// The node listener: a second, TLS-only server of the same Fastify app, for node traffic.
// It demands a client certificate chained to the trusted CA (mutual TLS) and serves only
// the node routes (/v1/tiers/…) and /healthz; the consumer API stays on the main port.
// Routes behind it learn who called from the peer certificate (peerNodeOf).
import { createServer, type Server } from 'node:https'
import type { TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem, type ProblemCode } from '../problems/problem.js'
import { nodeIdOfCert } from './assertion.js'

export interface NodeListener {
  port: number
  /** TLS sessions (connections) accepted so far: with keep-alive, far fewer than requests. */
  sessions(): number
  close(): Promise<void>
}

/**
 * Relay assertions grow with the path (one link of ~3 KB per hop, MAX_HOPS 8) and so do the
 * evidence chains of the answers: Node's default of 16 KiB for all headers would refuse a
 * six-hop path (county → … → national → … → county).
 */
export const NODE_MAX_HEADER_BYTES = 64 * 1024

// The node id of each peer, read once per TLS connection (getPeerCertificate builds a whole
// object per call: 3.5 % of a relaying node's CPU when it was called per request). A
// connection's peer cannot change: the listener refuses renegotiation.
const peers = new WeakMap<object, string | null>()

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
      maxHeaderSize: NODE_MAX_HEADER_BYTES,
    },
    (req, res) => {
      const url = req.url ?? '/'
      if (!url.startsWith('/v1/tiers/') && url !== '/healthz') {
        res.writeHead(404, { 'content-type': 'application/problem+json' })
        const code: ProblemCode = 'NODE_ROUTE_UNKNOWN'
        res.end(JSON.stringify({ type: `urn:tongban:problem:${code}`, title: 'Not Found', status: 404, code, detail: 'the node listener serves /v1/tiers/… only' }))
        return
      }
      app.routing(req, res)
    },
  )
  server.on('tlsClientError', () => {}) // a peer without a trusted certificate: the handshake fails, nothing else
  let sessions = 0
  server.on('secureConnection', (socket: TLSSocket) => {
    sessions++
    // The peer read once per connection (peerNodeOf) must stay the peer: no renegotiation.
    socket.disableRenegotiation()
  })
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
    sessions: () => sessions,
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
  let id = peers.get(socket)
  if (id === undefined) {
    id = nodeIdOfCert(socket.getPeerCertificate() as unknown as { subject: Record<string, string> })
    peers.set(socket, id)
  }
  if (!id) throw new Problem(403, 'NODE_AUTH_REQUIRED', 'the client certificate is not a node certificate')
  return id
}
