// Checkpoints to the parent, child side (docs/audit.md, docs/architecture.md: cross-node messages on BullMQ).
// Every chain's signed checkpoints past what the parent acknowledged travel to the parent
// (POST /v1/tiers/checkpoints over the node listener's mTLS, checkpoint-parent.ts) in
// bounded batches, so that a tail cut out of this node's own PostgreSQL is still visible:
// the parent holds the heads, and the integrity check compares against them.
//
// A `checkpoints.push` job is added every `intervalMs` on every replica, when the node
// starts, and once more at shutdown if the direct last push fails. It has a fixed job id, so
// requests coalesce into one job while one waits or retries (exponential backoff), across
// replicas (one shared queue per node). It lives in Redis, so a restart loses none, and it
// reads from PostgreSQL when it runs, so one run sends everything outstanding. The parent's
// answer is the truth about what it holds: the child's acks (tiers_checkpoint_acks) only
// save resending, and a CHECKPOINT_GAP answer resets them to the parent's heads.
import { UnrecoverableError } from 'bullmq'
import { createQueuePair, type JobsLogger, type RedisTarget } from '../queues/factory.js'
import type { Checkpoint } from '../evidence/evidence.js'
import type { Anchor } from '../evidence/evidence.js'
import type { Db } from '../stores/postgres.js'
import { isProblem } from '../problems/problem.js'
import type { NodeClient } from './node-client.js'
import { CHECKPOINTS_PATH, HEADS_PATH, type CheckpointPush, type HeldHead } from './checkpoint-parent.js'
import type { TopologyNode } from './topology.js'

export const CHECKPOINTS_QUEUE = 'tiers-checkpoints'
export const JOB_PUSH = 'checkpoints.push'
const JOB_ID = 'checkpoints-push'
/** Batches per run; more work left queues the next run at once. */
const MAX_ROUNDS = 50

export interface PushDeps {
  db: Db
  client: NodeClient
  parent: TopologyNode
  self: string
  /** This node's own certificate (its kid may not be in audit_certificates yet). */
  own: { kid: string; certPem: string }
  batch: number
  timeoutMs: number
  log: JobsLogger
}

// The next checkpoints of every chain past its ack: chains by a loose index scan (a few
// replicas' chains among millions of checkpoints), then each chain's next ones by its key,
// taken round-robin (rn) so that one busy or refused chain does not starve the others.
const PENDING = `
WITH RECURSIVE chains AS (
  (SELECT chain FROM audit_checkpoints ORDER BY chain LIMIT 1)
  UNION ALL
  SELECT (SELECT c.chain FROM audit_checkpoints c WHERE c.chain > chains.chain ORDER BY c.chain LIMIT 1)
  FROM chains WHERE chains.chain IS NOT NULL
)
SELECT x.chain, x.seq, x.checkpoint, x.sig, x.rn FROM chains
LEFT JOIN tiers_checkpoint_acks a ON a.chain = chains.chain
CROSS JOIN LATERAL (
  SELECT c.chain, c.seq, c.checkpoint, c.sig, row_number() OVER (ORDER BY c.seq) AS rn FROM audit_checkpoints c
  WHERE c.chain = chains.chain AND c.seq > coalesce(a.seq, 0) ORDER BY c.seq LIMIT $1
) x
WHERE chains.chain IS NOT NULL
ORDER BY x.rn, x.chain
LIMIT $1`

async function saveAcks(db: Db, heads: HeldHead[]): Promise<void> {
  if (!heads.length) return
  await db.query(
    `INSERT INTO tiers_checkpoint_acks (chain, seq, hash)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
     ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, acked_at = now()`,
    [heads.map((h) => h.chain), heads.map((h) => h.seq), heads.map((h) => h.hash)],
  )
}

/** Sends what the parent lacks; resolves with the number of checkpoints it accepted. */
export async function pushCheckpoints(d: PushDeps, reason: string): Promise<{ sent: number; more: boolean }> {
  let sent = 0
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { rows } = await d.db.query(PENDING, [d.batch])
    if (!rows.length) return { sent, more: false }
    const checkpoints = rows.map((r) => {
      const { sig: _s, ...cp } = r.checkpoint as Checkpoint & { sig?: string }
      return { checkpoint: cp as Checkpoint, sig: r.sig as string }
    })
    const kids = [...new Set(checkpoints.map((c) => c.checkpoint.kid))]
    const certs = new Map<string, string>()
    if (kids.includes(d.own.kid)) certs.set(d.own.kid, d.own.certPem)
    for (const r of (await d.db.query('SELECT kid, cert_pem FROM audit_certificates WHERE kid = ANY($1)', [kids])).rows) certs.set(r.kid, r.cert_pem)
    const push: CheckpointPush = { v: 1, node: d.self, certificates: [...certs.values()], checkpoints }

    const res = await d.client.send(d.parent, { method: 'POST', path: CHECKPOINTS_PATH, body: JSON.stringify(push), timeoutMs: d.timeoutMs, guarded: false })
    let body: { code?: string; detail?: string; heads?: HeldHead[]; accepted?: number; chain?: string; seq?: number } = {}
    try {
      body = JSON.parse(res.body)
    } catch {
      /* not JSON: handled by status below */
    }
    if (res.status === 200) {
      await saveAcks(d.db, body.heads ?? [])
      sent += body.accepted ?? 0
      d.log.info({ parent: d.parent.id, reason, accepted: body.accepted, checkpoints: checkpoints.length }, 'tiers checkpoints: sent to the parent')
      if (rows.length < d.batch) return { sent, more: false }
      continue
    }
    if (res.status === 409 && Array.isArray(body.heads)) {
      // The parent took the chains it could and says where it stands on each: go on from
      // there. A gap: it holds less than our acks say (its data restored) — resend.
      const chains = new Set(checkpoints.map((c) => c.checkpoint.chain))
      const held = new Map(body.heads.map((h) => [h.chain, h]))
      await saveAcks(d.db, [...chains].map((c) => held.get(c) ?? { chain: c, seq: 0, hash: '0'.repeat(64) }))
      sent += body.accepted ?? 0
      if (body.code === 'CHECKPOINT_GAP') {
        d.log.warn({ parent: d.parent.id, detail: body.detail }, 'tiers checkpoints: the parent holds less than acknowledged; resending from its heads')
        continue
      }
    }
    const what = `node ${d.parent.id} answered ${res.status} ${body.code ?? ''}: ${(body.detail ?? res.body).slice(0, 300)}`
    if (res.status >= 400 && res.status < 500) {
      // A refusal (a fork above all) does not go away by retrying now: say it loudly; the
      // periodic run tries again.
      d.log.error({ parent: d.parent.id, code: body.code, status: res.status, chain: body.chain, seq: body.seq }, `tiers checkpoints: the parent REFUSES this node's checkpoints (${what})`)
      throw new UnrecoverableError(what)
    }
    throw new Error(what)
  }
  return { sent, more: true }
}

/** The heads the parent holds for this node: what the integrity check compares the log with. */
export async function fetchParentHeads(client: NodeClient, parent: TopologyNode, self: string, timeoutMs: number): Promise<Anchor[]> {
  const res = await client.send(parent, { method: 'GET', path: `${HEADS_PATH}?node=${self}`, timeoutMs, guarded: false })
  if (res.status !== 200) throw new Error(`node ${parent.id} answered ${res.status}: ${res.body.slice(0, 200)}`)
  const heads = (JSON.parse(res.body) as { heads: HeldHead[] }).heads
  return heads.map((h) => ({ chain: h.chain, seq: h.seq, hash: h.hash }))
}

export interface CheckpointJobs {
  /** Adds (or joins) the push job; never throws. */
  request(reason: string): Promise<void>
  /** The last push at shutdown: directly, bounded; queued for after the restart if it fails. */
  final(push: () => Promise<unknown>): Promise<void>
  close(): Promise<void>
}

export function createCheckpointJobs(o: { redis: RedisTarget; prefix: string; backoffMs: number; log: JobsLogger; push(reason: string): Promise<{ more: boolean }> }): CheckpointJobs {
  const pair = createQueuePair<{ reason?: string }, void, string>({
    name: CHECKPOINTS_QUEUE,
    redis: o.redis,
    prefix: o.prefix,
    clientName: 'tiers-checkpoints',
    label: 'tiers checkpoints',
    log: o.log,
    processor: async (job) => {
      if (job.name !== JOB_PUSH) return
      const r = await o.push(String(job.data?.reason ?? 'unknown'))
      if (r.more) setImmediate(() => void add('more to send').catch(() => {}))
    },
    concurrency: 1,
    defaultJobOptions: {
      // Five tries (backoff, 2×, 4×, 8×) and the job is gone: its id is free for the next
      // periodic run, which starts over (the data is in PostgreSQL, not in the job).
      attempts: 5,
      backoff: { type: 'exponential', delay: o.backoffMs },
      removeOnComplete: true,
      removeOnFail: true,
    },
    closeTimeoutMs: 5000,
  })
  const add = (reason: string) => pair.queue.add(JOB_PUSH, { reason }, { jobId: JOB_ID })
  pair.worker.on('failed', (job, err) => {
    if (!job) return
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1)
    o.log[final ? 'error' : 'warn']({ err: { message: err.message }, job: { id: job.id, attemptsMade: job.attemptsMade } }, final ? 'tiers checkpoints: push failed; the next periodic run tries again' : 'tiers checkpoints: push failed, will retry')
  })
  const request = async (reason: string) => {
    try {
      await pair.add(JOB_PUSH, { reason }, { jobId: JOB_ID })
    } catch (err) {
      o.log.warn({ err: { message: (err as Error).message }, reason }, 'tiers checkpoints: could not queue a push')
    }
  }
  return {
    request,
    async final(push) {
      try {
        await push()
      } catch (err) {
        o.log.warn({ err: { message: isProblem(err) ? err.code : (err as Error).message } }, 'tiers checkpoints: last push at shutdown failed; queued for the next start')
        await request('shutdown')
      }
    },
    close: pair.close,
  }
}
