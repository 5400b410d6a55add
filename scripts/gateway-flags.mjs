// Node.js flags of a gateway process, wherever one is started for real: `npm start`, the
// four-node tree, the benchmarks; the Dockerfile's CMD repeats them.
// --max-semi-space-size=64: a 64 MiB young generation (V8's default is 16 MiB). Nearly all
// of a query's objects die within the request; a larger nursery is scavenged less often and
// promotes less, which cut the CPU per query and raised throughput at 128 connections in
// same-round benchmarks (docs/performance.md), for ~100 MiB more RSS at peak.
export const GATEWAY_NODE_FLAGS = ['--max-semi-space-size=64']

// The environment of a gateway of each signature suite (`npm start -- --suite sm2`, the
// benchmark's SM2 node): RSA is the default and needs nothing; an SM2 node signs checkpoints
// SM2-SM3 with its SM2 certificate of the dev PKI's certs/sm2 tree, hashes evidence v2 with
// SM3, and registers the systems' SM2 certificates (docs/gm.md). Paths are relative to the
// PKI directory.
export const SUITE_ENV = {
  rsa: {},
  sm2: {
    TONGBAN_AUDIT_ALG: 'SM2-SM3',
    TONGBAN_EVIDENCE_VERSION: '2',
    TONGBAN_SIGN_CERT_FILE: 'sm2/node/${node}.crt.pem',
    TONGBAN_SIGN_KEY_FILE: 'sm2/node/${node}.key.pem',
    TONGBAN_SIGN_CA_FILE: 'sm2/ca.crt.pem',
    TONGBAN_CLIENTS_DIR: 'sm2/clients',
  },
}

/** The suite's variables for node `nodeId` (default 320000); throws on an unknown suite. */
export function suiteEnv(suite, nodeId = '320000') {
  const env = SUITE_ENV[suite]
  if (!env) throw new Error(`unknown suite ${JSON.stringify(suite)}: ${Object.keys(SUITE_ENV).join(' or ')}`)
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replaceAll('${node}', nodeId)]))
}
