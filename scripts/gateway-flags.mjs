// Node.js flags of a gateway process, wherever one is started for real: `npm start`, the
// four-node tree, the benchmarks; the Dockerfile's CMD repeats them.
// --max-semi-space-size=64: a 64 MiB young generation (V8's default is 16 MiB). Nearly all
// of a query's objects die within the request; a larger nursery is scavenged less often and
// promotes less, which cut the CPU per query and raised throughput at 128 connections in
// same-round benchmarks (docs/performance.md), for ~100 MiB more RSS at peak.
export const GATEWAY_NODE_FLAGS = ['--max-semi-space-size=64']
