// Every setting of a node, described once: its JSON Schema (type, limits), its default, the
// environment variables that set it and a description. The `Config` type is derived from
// this object (infer.ts) and the loader walks it (load.ts); README's configuration table
// and docs/operations.md name the same variables.
//
// Annotations the loader reads (JSON Schema ignores `x-` keywords):
//   x-env           variables that set the value, the first one set wins
//   x-file          false: not read from the config file (otherwise its path there is
//                   the setting's own path, e.g. http.port)
//   default         the value when no source sets it; x-default is a template over other
//                   settings (${node.id}) or ${hostname}, for derived defaults
//   x-relative-to   a path: resolved against the root directory, or another path setting
//   x-none          values that mean null (no parent)
//   x-unset         values that count as not given
//   x-merge         an object merged over every source (file < env JSON < x-env-prefix)
//   x-env-prefix    TONGBAN_UPSTREAM_MPS_IDENTITY=… sets the key mps-identity
//   x-from-file     a list that may come from a JSON file named by another setting
//   x-unwrap        a JSON value { "<key>": [...] } is taken as its list
//   x-null-unless   a section that is null unless this key of it is set
// Sections list all their keys in `required`: a loaded configuration is complete. A
// `default` inside the items of a list (a topology node's parent) is filled in per item.

const section = <const P extends Record<string, object>>(description: string, properties: P) =>
  ({ type: 'object', description, required: Object.keys(properties) as Array<keyof P & string>, properties }) as const

const REGION = '^[1-9][0-9]{5}$'
const URL = '^[a-z][a-z0-9+.-]*://'
const HOST_PORTS = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5}(,(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5})*$'
const TIERS = ['national', 'province', 'city', 'county'] as const

const topologyNode = {
  type: 'object',
  required: ['id', 'tier', 'region'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: REGION },
    name: { type: 'string', minLength: 1 },
    tier: { enum: TIERS },
    region: { type: 'string', pattern: REGION, description: 'GB/T 2260 code of the division the node serves' },
    parent: { anyOf: [{ type: 'null' }, { type: 'string', pattern: REGION }], default: null, description: 'null (or left out) only for the root of the tree' },
    publicUrl: { type: 'string', pattern: '^https?://', description: "the node's public API (informative)" },
    nodeUrl: { type: 'string', pattern: '^https://[^/]+/?$', description: "the node's node-to-node mTLS listener, e.g. https://127.0.0.1:9443" },
  },
} as const

export const configSchema = section('Configuration of one gateway node: defaults < config/node.json (or TONGBAN_CONFIG) < environment', {
  node: section('This node of the tier tree', {
    id: { type: 'string', pattern: REGION, 'x-env': ['TONGBAN_NODE_ID'], default: '320000', description: 'node id: its GB/T 2260 region code' },
    name: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_NODE_NAME'], 'x-default': 'Tongban node ${node.id}', description: 'display name' },
    region: { type: 'string', pattern: REGION, 'x-env': ['TONGBAN_NODE_REGION'], 'x-default': '${node.id}', description: 'GB/T 2260 region served' },
    tier: { enum: TIERS, 'x-env': ['TONGBAN_NODE_TIER'], default: 'province', description: 'administrative tier' },
    publicUrl: { type: 'string', pattern: URL, 'x-env': ['TONGBAN_PUBLIC_URL'], 'x-default': 'http://${http.host}:${http.port}', description: 'the URL clients use; the token audience is <url>/v1/oauth/token' },
    parent: {
      anyOf: [{ type: 'null' }, { type: 'string', pattern: REGION }],
      'x-env': ['TONGBAN_NODE_PARENT'],
      'x-none': ['', 'none'],
      default: null,
      description: "the parent node's id in the tier tree; null for a root or a stand-alone node",
    },
  }),
  replicaId: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$', 'x-env': ['TONGBAN_REPLICA_ID'], 'x-default': '${hostname}-${http.port}', description: "this replica's audit chain id (unique per running replica)" },
  http: section('The public listener', {
    host: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_HOST'], default: '127.0.0.1', description: 'listen address' },
    port: { type: 'integer', minimum: 0, maximum: 65535, 'x-env': ['TONGBAN_PORT', 'PORT'], default: 8443, description: 'listen port (0: any free port)' },
    bodyLimit: { type: 'integer', minimum: 1024, maximum: 100 * 1024 * 1024, 'x-env': ['TONGBAN_BODY_LIMIT'], default: 64 * 1024, description: 'request body limit (bytes)' },
    // Behind a load balancer: at least its checks' fall × interval, so it has marked this
    // replica down before the port closes (docs/operations.md, Scale-out: replicas and HAProxy).
    drainMs: { type: 'integer', minimum: 0, maximum: 120_000, 'x-env': ['TONGBAN_DRAIN_MS'], default: 0, description: 'on SIGTERM: how long /readyz answers 503 (draining) while requests are still served, before the listener closes (ms); 0: close at once (no load balancer)' },
  }),
  postgres: section('PostgreSQL', {
    url: { type: 'string', pattern: URL, 'x-env': ['TONGBAN_PG_URL', 'DATABASE_URL'], default: 'postgres://postgres@127.0.0.1:5432/test', description: 'connection URL' },
    schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$', 'x-env': ['TONGBAN_PG_SCHEMA'], default: 'tongban', description: 'schema of this node' },
    poolSize: { type: 'integer', minimum: 1, maximum: 200, 'x-env': ['TONGBAN_PG_POOL'], default: 10, description: 'pool size' },
    queryTimeoutMs: { type: 'integer', minimum: 100, 'x-env': ['TONGBAN_PG_QUERY_TIMEOUT_MS'], default: 5000, description: 'query timeout (a hung database becomes AUDIT_UNAVAILABLE)' },
    // Primary and standby (issue 17, docs/operations.md "Scale-out: PostgreSQL").
    hosts: { type: 'string', pattern: '^$|^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5}( *, *(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5})*$', 'x-env': ['TONGBAN_PG_HOSTS'], default: '', description: 'host:port,… tried in order for the one that takes writes (not in recovery), in place of the URL\'s host; empty: the URL\'s host only' },
    readUrl: { type: 'string', pattern: '^$|^postgres(ql)?://', 'x-env': ['TONGBAN_PG_READ_URL'], default: '', description: "auditor queries (search, evidence, stats, integrity, exports) go here, e.g. a standby; empty: the primary's pool" },
    synchronousCommit: { enum: ['remote_apply', 'on', 'remote_write', 'local'], 'x-env': ['TONGBAN_PG_SYNC_COMMIT'], default: 'remote_apply', description: "the gateway's sessions' synchronous_commit: with a synchronous standby, remote_apply releases an answer only once its audit record is applied there (no standby: the same as local)" },
  }),
  redis: section('Redis', {
    url: { type: 'string', pattern: URL, 'x-env': ['TONGBAN_REDIS_URL', 'REDIS_URL'], default: 'redis://127.0.0.1:6379', description: 'connection URL' },
    prefix: { type: 'string', pattern: '^[A-Za-z0-9:._-]{1,64}$', 'x-env': ['TONGBAN_REDIS_PREFIX'], default: 'tongban:', description: 'key prefix of this node' },
    // Scale-out (docs/operations.md, "Scale-out: Redis"): one of these replaces url.
    sentinels: {
      anyOf: [{ type: 'null' }, { type: 'string', pattern: HOST_PORTS }],
      'x-env': ['TONGBAN_REDIS_SENTINELS'],
      'x-unset': [''],
      default: null,
      description: 'Redis Sentinel: the sentinels (host:port,…); the node then follows the master they name (url is not used)',
    },
    sentinelName: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$', 'x-env': ['TONGBAN_REDIS_SENTINEL_NAME'], default: 'mymaster', description: 'Redis Sentinel: the name of the monitored master' },
    clusterNodes: {
      anyOf: [{ type: 'null' }, { type: 'string', pattern: HOST_PORTS }],
      'x-env': ['TONGBAN_REDIS_CLUSTER_NODES'],
      'x-unset': [''],
      default: null,
      description: 'Redis Cluster: some nodes to start from (host:port,…); url and sentinels are then not used',
    },
    waitReplicas: {
      anyOf: [{ type: 'null' }, { type: 'integer', minimum: 0, maximum: 8 }],
      'x-env': ['TONGBAN_REDIS_WAIT_REPLICAS'],
      'x-unset': ['', 'auto'],
      default: null,
      description: 'replicas a quota increment must reach (WAIT) before its queries are admitted; null (auto): 1 with Sentinel or Cluster, 0 standalone',
    },
    waitTimeoutMs: { type: 'integer', minimum: 10, maximum: 10_000, 'x-env': ['TONGBAN_REDIS_WAIT_MS'], default: 500, description: 'how long a quota increment waits for its replicas before the queries fail closed (ms)' },
  }),
  pki: section('Trust anchor and node key', {
    dir: { type: 'string', 'x-env': ['TONGBAN_PKI_DIR'], default: 'certs', 'x-relative-to': 'root', description: 'PKI directory' },
    caFile: { type: 'string', 'x-env': ['TONGBAN_CA_FILE'], 'x-file': false, default: 'ca.crt.pem', 'x-relative-to': 'pki.dir', description: 'CA certificate' },
    certFile: { type: 'string', 'x-env': ['TONGBAN_CERT_FILE'], 'x-file': false, 'x-default': 'node/${node.id}.crt.pem', 'x-relative-to': 'pki.dir', description: 'node certificate' },
    keyFile: { type: 'string', 'x-env': ['TONGBAN_KEY_FILE'], 'x-file': false, 'x-default': 'node/${node.id}.key.pem', 'x-relative-to': 'pki.dir', description: 'node key' },
    clientsDir: { type: 'string', 'x-env': ['TONGBAN_CLIENTS_DIR'], 'x-file': false, default: 'clients', 'x-relative-to': 'pki.dir', description: "registered systems' certificates (<client id>.crt.pem), seeded at start; sm2/clients: the SM2 ones" },
    // An SM2 node signs its evidence with an SM2 certificate of its own, while TLS, tokens and
    // node links keep the node certificate above (Node's OpenSSL has no TLCP: docs/gm.md).
    signCertFile: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }], 'x-env': ['TONGBAN_SIGN_CERT_FILE'], 'x-file': false, 'x-none': [''], default: null, 'x-relative-to': 'pki.dir', description: 'certificate that signs audit checkpoints and statements (SM2 for SM2-SM3); unset: the node certificate' },
    signKeyFile: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }], 'x-env': ['TONGBAN_SIGN_KEY_FILE'], 'x-file': false, 'x-none': [''], default: null, 'x-relative-to': 'pki.dir', description: "private key of the signing certificate; unset: the node key" },
    signCaFile: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }], 'x-env': ['TONGBAN_SIGN_CA_FILE'], 'x-file': false, 'x-none': [''], default: null, 'x-relative-to': 'pki.dir', description: "the CA that issued the signing certificate (the SM2 CA), also trusted for clients' SM2 certificates and children's checkpoints; unset: the CA above" },
  }),
  audit: section('Audit log', {
    keyFile: { type: 'string', 'x-env': ['TONGBAN_AUDIT_KEY_FILE'], 'x-file': false, default: 'audit-hmac.key', 'x-relative-to': 'pki.dir', description: 'HMAC key for subjects (keep it: searches depend on it)' },
    alg: { enum: ['RS256', 'PS256', 'SM2-SM3'], 'x-env': ['TONGBAN_AUDIT_ALG'], default: 'RS256', description: 'checkpoint signature suite (SM2-SM3 needs an SM2 signing certificate, pki.signCertFile)' },
    evidenceVersion: { anyOf: [{ type: 'null' }, { type: 'integer', enum: [1, 2] }], 'x-env': ['TONGBAN_EVIDENCE_VERSION'], 'x-none': ['', 'auto'], default: null, description: 'evidence format: 1 (SHA-256) or 2 (SM3 digests, Merkle tree and checkpoint hash); unset: 2 with SM2-SM3, else 1' },
    batchMaxSize: { type: 'integer', minimum: 1, maximum: 4096, 'x-env': ['TONGBAN_AUDIT_BATCH_MAX'], default: 256, description: 'group commit: records per batch' },
    batchWindowMs: { type: 'integer', minimum: 0, maximum: 1000, 'x-env': ['TONGBAN_AUDIT_BATCH_WINDOW_MS'], default: 1, description: 'group commit: collection window (ms)' },
    stateDir: { type: 'string', 'x-env': ['TONGBAN_AUDIT_STATE_DIR'], 'x-file': false, default: 'audit-hwm', 'x-relative-to': 'pki.dir', description: "the chains' high-water marks (fsync'd files, outside the table they protect)" },
  }),
  token: section('Access tokens', {
    ttlSeconds: { type: 'integer', minimum: 30, maximum: 86400, 'x-env': ['TONGBAN_TOKEN_TTL'], default: 600, description: 'access token lifetime (s)' },
    assertionMaxLifetimeSeconds: { type: 'integer', minimum: 1, 'x-file': false, default: 300, description: 'longest client assertion accepted (s); fixed' },
  }),
  files: section('Reviewable configuration files', {
    catalogDir: { type: 'string', 'x-env': ['TONGBAN_CATALOG_DIR'], default: 'catalog', 'x-relative-to': 'root', description: 'catalogue entries' },
    schemasDir: { type: 'string', 'x-env': ['TONGBAN_SCHEMAS_DIR'], default: 'schemas', 'x-relative-to': 'root', description: 'JSON Schemas of the operations' },
    systemsFile: { type: 'string', 'x-env': ['TONGBAN_SYSTEMS_FILE'], default: 'config/systems.json', 'x-relative-to': 'root', description: 'registered systems' },
    purposesFile: { type: 'string', 'x-env': ['TONGBAN_PURPOSES_FILE'], default: 'config/purposes.json', 'x-relative-to': 'root', description: 'purpose codes' },
  }),
  policy: section('Sharing policy', {
    decisionWorkingDays: { type: 'integer', minimum: 1, maximum: 60, 'x-env': ['TONGBAN_DECISION_WORKING_DAYS'], default: 10, description: 'application deadline (working days)' },
    reminderWorkingDays: { type: 'integer', minimum: 0, maximum: 30, 'x-env': ['TONGBAN_REMINDER_WORKING_DAYS'], default: 2, description: 'reminder before the deadline (working days)' },
    holidaysFile: { type: 'string', 'x-env': ['TONGBAN_HOLIDAYS_FILE'], default: 'config/holidays.json', 'x-relative-to': 'root', description: 'public holidays and working weekends' },
    calendarWarnDays: { type: 'integer', minimum: 0, maximum: 366, 'x-env': ['TONGBAN_CALENDAR_WARN_DAYS'], default: 60, description: 'warn (log, /readyz, metric) when the holiday calendar is complete for fewer days ahead; 0 never warns' },
    rateLimitPerSecond: { type: 'integer', minimum: 0, 'x-env': ['TONGBAN_RATE_LIMIT'], default: 2000, description: 'queries per second per system; 0 switches per-system rate limiting off' },
  }),
  disputes: section('Disputes (疑义数据校核, src/disputes, docs/disputes.md): the providing department resolves a disputed answer by a deadline', {
    workingDays: { type: 'integer', minimum: 1, maximum: 60, 'x-env': ['TONGBAN_DISPUTE_WORKING_DAYS'], default: 5, description: 'a provider resolves a dispute within this many working days' },
    reminderWorkingDays: { type: 'integer', minimum: 0, maximum: 30, 'x-env': ['TONGBAN_DISPUTE_REMINDER_WORKING_DAYS'], default: 1, description: 'reminder this many working days before the deadline (0: at the deadline only)' },
    deadlineSeconds: { type: 'integer', minimum: 0, maximum: 86400 * 60, 'x-env': ['TONGBAN_DISPUTE_DEADLINE_SECONDS'], default: 0, description: 'drills and tests: when > 0 the deadline is this many seconds after filing (reminder at half of it) instead of working days' },
  }),
  upstreams: {
    type: 'object',
    additionalProperties: { type: 'string', pattern: URL },
    'x-env': ['TONGBAN_UPSTREAMS'],
    'x-env-prefix': 'TONGBAN_UPSTREAM_',
    'x-merge': true,
    default: {},
    description: "base URL of each of the catalogue's logical upstreams (TONGBAN_UPSTREAM_MPS_IDENTITY sets mps-identity)",
  },
  upstreamBreaker: section("A departmental upstream's circuit breaker (src/exchange/upstream-breaker.ts), per upstream and replica", {
    failures: { type: 'integer', minimum: 1, maximum: 1000, 'x-env': ['TONGBAN_PROVIDER_BREAKER_FAILURES'], default: 5, description: 'consecutive failed calls (after their retries) that open it' },
    halfOpenAfterMs: { type: 'integer', minimum: 100, maximum: 3_600_000, 'x-env': ['TONGBAN_PROVIDER_BREAKER_HALF_OPEN_MS'], default: 10_000, description: 'how long it stays open before one call probes the upstream (ms)' },
  }),
  metrics: section('Metrics endpoint', {
    token: {
      anyOf: [{ type: 'null' }, { type: 'string', minLength: 16, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' }],
      'x-env': ['TONGBAN_METRICS_TOKEN'],
      'x-unset': [''],
      default: null,
      description: 'static bearer token of /metrics',
    },
  }),
  batch: section('Bulk verification (src/bulk): limits of a submission and of the workers of this replica', {
    worker: { type: 'boolean', 'x-env': ['TONGBAN_BATCH_WORKER'], default: true, description: 'run the batch worker in this process (0 for API-only replicas)' },
    maxItems: { type: 'integer', minimum: 1, maximum: 100_000, 'x-env': ['TONGBAN_BATCH_MAX_ITEMS'], default: 100_000, description: 'items per submission' },
    maxBytes: { type: 'integer', minimum: 1024, maximum: 256 * 1024 * 1024, 'x-env': ['TONGBAN_BATCH_MAX_BYTES'], default: 32 * 1024 * 1024, description: 'bytes per submission' },
    chunkSize: { type: 'integer', minimum: 1, maximum: 1000, 'x-env': ['TONGBAN_BATCH_CHUNK'], default: 100, description: 'items per chunk job' },
    jobConcurrency: { type: 'integer', minimum: 1, maximum: 64, 'x-env': ['TONGBAN_BATCH_JOB_CONCURRENCY'], default: 4, description: "chunk jobs run at once by this replica's worker" },
    upstreamConcurrency: { type: 'integer', minimum: 1, maximum: 512, 'x-env': ['TONGBAN_BATCH_UPSTREAM_CONCURRENCY'], default: 16, description: 'items in flight at once per upstream, per replica (overridable per upstream in limits)' },
    upstreamRatePerSecond: { type: 'integer', minimum: 0, 'x-env': ['TONGBAN_BATCH_UPSTREAM_RATE'], default: 500, description: 'items per second per upstream across all replicas (Redis counter); 0 = unlimited' },
    limits: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { concurrency: { type: 'integer', minimum: 1, maximum: 512 }, ratePerSecond: { type: 'integer', minimum: 0 } },
      },
      'x-env': ['TONGBAN_BATCH_LIMITS'],
      default: {},
      description: 'per upstream: { "<name>": { "concurrency": n, "ratePerSecond": n } }',
    },
    lockMs: { type: 'integer', minimum: 1000, maximum: 600_000, 'x-env': ['TONGBAN_BATCH_LOCK_MS'], default: 30_000, description: "BullMQ lock of a running chunk job: how soon a killed worker's chunk is taken over" },
    retentionDays: { type: 'integer', minimum: 1, maximum: 365, 'x-env': ['TONGBAN_BATCH_RETENTION_DAYS'], default: 7, description: 'finished batches (and their results) are deleted after this many days' },
  }),
  tiers: section('Four tiers (src/tiers): topology, node listener, relay limits, catalogue sync', {
    listen: {
      anyOf: [
        { type: 'null' },
        section('The mTLS listener for node traffic', {
          host: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_NODE_HOST'], 'x-default': '${http.host}', description: 'listen address' },
          port: { type: 'integer', minimum: 0, maximum: 65535, 'x-env': ['TONGBAN_NODE_PORT'], description: 'listen port (0: any free port)' },
        }),
      ],
      'x-null-unless': 'port',
      description: 'null when the node talks to no other node',
    },
    topologyFile: {
      anyOf: [{ type: 'null' }, { type: 'string' }],
      'x-env': ['TONGBAN_TOPOLOGY_FILE'],
      'x-none': [''],
      default: null,
      'x-relative-to': 'root',
      description: 'a JSON file of the topology (the node list, or { "nodes": [...] })',
    },
    nodes: {
      type: 'array',
      maxItems: 10_000,
      items: topologyNode,
      'x-env': ['TONGBAN_TOPOLOGY'],
      'x-from-file': 'tiers.topologyFile',
      'x-unwrap': 'nodes',
      default: [],
      description: 'the nodes this node knows, itself included; empty: a single, stand-alone node',
    },
    hopTimeoutMs: { type: 'integer', minimum: 50, maximum: 120_000, 'x-env': ['TONGBAN_HOP_TIMEOUT_MS'], default: 5000, description: "upper bound of one call to the next hop (ms); shrinks along the path with the caller's budget" },
    maxConcurrentPerHop: { type: 'integer', minimum: 1, maximum: 4096, 'x-env': ['TONGBAN_HOP_MAX_CONCURRENT'], default: 64, description: 'calls in flight at once to one next hop, per replica; more are refused with 503 HOP_SATURATED' },
    breaker: section("A next hop's breaker", {
      failures: { type: 'integer', minimum: 1, maximum: 1000, 'x-env': ['TONGBAN_BREAKER_FAILURES'], default: 5, description: 'consecutive failures that open it' },
      openMs: { type: 'integer', minimum: 100, maximum: 3_600_000, 'x-env': ['TONGBAN_BREAKER_OPEN_MS'], default: 10_000, description: 'how long it stays open (ms)' },
    }),
    syncIntervalMs: { type: 'integer', minimum: 1000, 'x-env': ['TONGBAN_SYNC_INTERVAL_MS'], default: 300_000, description: 'safety-net interval of catalogue publication to the parent (ms); changes publish at once' },
    syncAttempts: { type: 'integer', minimum: 1, maximum: 100, 'x-env': ['TONGBAN_SYNC_ATTEMPTS'], default: 10, description: 'BullMQ attempts of a catalogue publication' },
    syncBackoffMs: { type: 'integer', minimum: 10, maximum: 600_000, 'x-env': ['TONGBAN_SYNC_BACKOFF_MS'], default: 1000, description: 'first backoff (ms, exponential) of a catalogue publication' },
    // 12 attempts from 2 s doubling: a message keeps trying for about 2 h before it is failed.
    messageAttempts: { type: 'integer', minimum: 1, maximum: 100, 'x-env': ['TONGBAN_MESSAGE_ATTEMPTS'], default: 12, description: 'BullMQ attempts of one leg of an application message' },
    messageBackoffMs: { type: 'integer', minimum: 10, maximum: 600_000, 'x-env': ['TONGBAN_MESSAGE_BACKOFF_MS'], default: 2000, description: 'first backoff (ms, exponential) of one leg of an application message' },
  }),
  checkpointPush: section('Checkpoints sent to the parent node (src/tiers/checkpoint-push.ts); unused without a parent', {
    intervalMs: { type: 'integer', minimum: 200, maximum: 3_600_000, 'x-env': ['TONGBAN_CHECKPOINT_PUSH_INTERVAL_MS'], default: 10_000, description: 'how often' },
    batch: { type: 'integer', minimum: 1, maximum: 2000, 'x-env': ['TONGBAN_CHECKPOINT_PUSH_BATCH'], default: 500, description: 'checkpoints per request' },
  }),
  cli: section('The tongban command (src/cli/node-url.ts): which node it talks to', {
    url: {
      anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https?://' }],
      'x-env': ['TONGBAN_URL'],
      'x-file': false,
      'x-none': [''],
      default: null,
      description: 'the node the command calls; unset: http://127.0.0.1:<TONGBAN_PORT>, else the node npm start recorded, else node.publicUrl',
    },
    stateFile: { type: 'string', 'x-env': ['TONGBAN_STATE_FILE'], 'x-file': false, default: '.tongban/node.json', 'x-relative-to': 'root', description: 'where npm start records the URL of each node it started (by port); the command reads it' },
  }),
  people: section("People's sign-in at the workbench (src/people): OpenID Connect relying party, sessions in Redis (docs/people.md)", {
    issuer: {
      anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https?://' }],
      'x-env': ['TONGBAN_OIDC_ISSUER'],
      'x-none': ['', 'none'],
      default: 'http://127.0.0.1:8455',
      description: "the identity provider's issuer URL (discovery: <issuer>/.well-known/openid-configuration); the default is the development provider of npm start (dev/oidc); none: no sign-in",
    },
    clientId: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_OIDC_CLIENT_ID'], default: 'tongban-workbench', description: 'client id of the workbench at the provider' },
    clientAuth: { enum: ['client_secret_basic', 'private_key_jwt'], 'x-env': ['TONGBAN_OIDC_CLIENT_AUTH'], default: 'client_secret_basic', description: 'how the gateway authenticates at the token endpoint' },
    clientSecret: {
      anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }],
      'x-env': ['TONGBAN_OIDC_CLIENT_SECRET'],
      'x-file': false,
      'x-unset': [''],
      default: 'tongban-dev-secret',
      description: "client_secret_basic: the secret (the default is the development provider's; set your own in production)",
    },
    clientKeyFile: {
      anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }],
      'x-env': ['TONGBAN_OIDC_CLIENT_KEY_FILE'],
      'x-none': [''],
      default: null,
      'x-relative-to': 'root',
      description: 'private_key_jwt: PEM file of the private key (PKCS#8; RSA signs RS256, EC P-256 ES256) whose public key the provider holds',
    },
    redirectUrl: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https?://' }], 'x-env': ['TONGBAN_OIDC_REDIRECT_URL'], 'x-none': [''], default: null, description: 'redirect URI registered at the provider; unset: <node.publicUrl>/workbench/auth/callback' },
    postLogoutRedirectUrl: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https?://' }], 'x-env': ['TONGBAN_OIDC_POST_LOGOUT_URL'], 'x-none': [''], default: null, description: 'where the provider sends the browser after sign-out (registered at the provider); unset: <node.publicUrl>/workbench/' },
    scopes: { type: 'string', pattern: '^openid( [\\x21-\\x7e]+)*$', 'x-env': ['TONGBAN_OIDC_SCOPES'], default: 'openid profile tongban', description: 'scopes asked for (space separated, openid first)' },
    claims: section("Names of the provider's claims (ID token, else userinfo)", {
      departmentCode: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_OIDC_CLAIM_DEPARTMENT_CODE'], default: 'dept_code', description: "the person's department: its GB 32100 credit code" },
      departmentName: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_OIDC_CLAIM_DEPARTMENT_NAME'], default: 'dept_name', description: "the department's name" },
      region: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_OIDC_CLAIM_REGION'], default: 'region', description: "the department's GB/T 2260 region" },
      roles: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_OIDC_CLAIM_ROLES'], default: 'roles', description: "the person's roles at the provider (a list of strings, or one space-separated string)" },
      name: { type: 'string', minLength: 1, 'x-env': ['TONGBAN_OIDC_CLAIM_NAME'], default: 'name', description: "the person's display name" },
    }),
    roleMap: {
      type: 'object',
      additionalProperties: { enum: ['consumer', 'provider', 'catalog-admin', 'auditor', 'operator'] },
      'x-env': ['TONGBAN_OIDC_ROLE_MAP'],
      default: { 'catalogue-admin': 'catalog-admin', 'provider-reviewer': 'provider', applicant: 'consumer', auditor: 'auditor' },
      description: "the provider's role names → the gateway's roles (a role not named here is ignored)",
    },
    departmentRoles: {
      type: 'object',
      propertyNames: { pattern: '^[0-9A-HJ-NPQRTUWXY]{18}$' },
      additionalProperties: { type: 'array', items: { enum: ['consumer', 'provider', 'catalog-admin', 'auditor', 'operator'] }, uniqueItems: true },
      'x-env': ['TONGBAN_PEOPLE_DEPARTMENT_ROLES'],
      default: {},
      description: 'roles a department holds without a registered system that has them: { "<credit code>": ["auditor"] } (docs/people.md, the ceiling rule)',
    },
    idleSeconds: { type: 'integer', minimum: 1, maximum: 86400, 'x-env': ['TONGBAN_SESSION_IDLE_SECONDS'], default: 1800, description: 'a session ends after this long without a request (sliding)' },
    absoluteSeconds: { type: 'integer', minimum: 1, maximum: 7 * 86400, 'x-env': ['TONGBAN_SESSION_ABSOLUTE_SECONDS'], default: 8 * 3600, description: 'a session ends this long after sign-in, however active' },
    cookieName: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', 'x-env': ['TONGBAN_SESSION_COOKIE'], default: 'tongban_session', description: 'name of the session cookie' },
    cookieSecure: { type: 'boolean', 'x-env': ['TONGBAN_SESSION_COOKIE_SECURE'], default: true, description: 'Secure cookies; false only for plain-http development and tests' },
  }),
  notify: section('Notifications sent on (src/notify/delivery, docs/notifications.md): signed webhooks and e-mail per department', {
    worker: { type: 'boolean', 'x-env': ['TONGBAN_NOTIFY_WORKER'], default: true, description: 'run the delivery worker in this process (0 for API-only replicas)' },
    webhooks: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: '^https?://' },
      'x-env': ['TONGBAN_NOTIFY_WEBHOOKS'],
      default: {},
      description: 'per department code, the URL its notices are POSTed to (signed): { "<department>": "https://…" }',
    },
    emails: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+$' },
      'x-env': ['TONGBAN_NOTIFY_EMAILS'],
      default: {},
      description: 'per department code, the address its notices are mailed to (needs smtpHost): { "<department>": "a@b" }',
    },
    smtpHost: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }], 'x-env': ['TONGBAN_SMTP_HOST'], 'x-unset': [''], default: null, description: 'SMTP server; null: no e-mail' },
    smtpPort: { type: 'integer', minimum: 1, maximum: 65535, 'x-env': ['TONGBAN_SMTP_PORT'], default: 587, description: 'SMTP port' },
    smtpSecure: { type: 'boolean', 'x-env': ['TONGBAN_SMTP_SECURE'], default: false, description: 'TLS from the start (port 465); false: STARTTLS when offered' },
    smtpFrom: { type: 'string', minLength: 3, 'x-env': ['TONGBAN_SMTP_FROM'], 'x-default': '通办 Tongban ${node.id} <noreply@localhost>', description: 'sender of the mails' },
    attempts: { type: 'integer', minimum: 1, maximum: 100, 'x-env': ['TONGBAN_NOTIFY_ATTEMPTS'], default: 10, description: 'BullMQ attempts of one delivery before it is failed' },
    backoffMs: { type: 'integer', minimum: 10, maximum: 600_000, 'x-env': ['TONGBAN_NOTIFY_BACKOFF_MS'], default: 5000, description: 'first backoff (ms, exponential) of a delivery' },
    timeoutMs: { type: 'integer', minimum: 100, maximum: 120_000, 'x-env': ['TONGBAN_NOTIFY_TIMEOUT_MS'], default: 10_000, description: 'upper bound of one webhook call or SMTP session (ms)' },
  }),
  licences: section('Electronic licences (src/licences, docs/licences.md): the seal trust anchors and the licence library\'s catalogue resources', {
    sealCaFile: { type: 'string', 'x-env': ['TONGBAN_LICENCE_SEAL_CA_FILE'], 'x-file': false, default: 'seals/seal-ca.crt.pem', 'x-relative-to': 'pki.dir', description: 'trusted seal CA certificates (PEM, SM2, one or more); missing: every seal is untrusted' },
    statusResource: { type: 'string', pattern: '^[0-9]{6}/[0-9]{5}$', 'x-env': ['TONGBAN_LICENCE_STATUS_RESOURCE'], default: '110001/00001', description: 'catalogue resource (operation status) POST /v1/licences/verify asks' },
    lookupResource: { type: 'string', pattern: '^[0-9]{6}/[0-9]{5}$', 'x-env': ['TONGBAN_LICENCE_LOOKUP_RESOURCE'], default: '110001/00002', description: 'catalogue resource (operation list) POST /v1/licences/lookup asks' },
  }),
  logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'x-env': ['TONGBAN_LOG_LEVEL', 'LOG_LEVEL'], default: 'info', description: 'pino level; personal data is redacted' },
})
