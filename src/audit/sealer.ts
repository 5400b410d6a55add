// Group commit of audit records (docs/audit.md): records that arrive within a short window
// (or up to batchMaxSize) become one RFC 9162 Merkle tree whose root is signed once and
// written with its records in one statement. Only then are the callers released, each with
// its evidence. Commits happen one at a time, in chain order. What arrives during a commit
// is the next batch, sealed as soon as that commit is done — or at once, if it fills up
// (batchMaxSize) before: then it is hashed, signed and chained onto the batch still
// committing (its checkpoint names that one), and written right after it (at most two in
// flight). Sealing every window during a commit would cut latency at low load but doubles
// the signatures per commit; under load, where the CPU is what is short, that is a loss
// (docs/performance.md). If a commit fails, the batch chained onto it fails too, and the
// head is read back from PostgreSQL before anything else is chained — unless the failure was
// about the data (failedBatch): then the batch is split and sealed again, so one bad record
// cannot take the others down.
import { jcs } from '../evidence/jcs.js'
import { buildTree, hashHex, leafHash } from '../evidence/merkle.js'
import { hashOfVersion, registerBatch, type AuditRecord, type Checkpoint, type Evidence, type EvidenceVersion } from '../evidence/evidence.js'
import { readHead, writeBatch, type ChainHead } from './store.js'
import type { Db } from '../stores/postgres.js'
import type { TailGuard } from './high-water.js'

export interface SealerOptions {
  db: Db
  node: string
  chain: string
  kid: string
  signer: { alg: string; signAsync(data: Buffer): Promise<Buffer> }
  batchMaxSize: number
  batchWindowMs: number
  /** Evidence format: 1 (SHA-256, the default) or 2 (SM3); records must carry its digests. */
  version?: EvidenceVersion
  onBatch?: (size: number, ms: number, ok: boolean) => void
  /** The chain's high-water mark and cut detection (high-water.ts); without it, none. */
  tail?: TailGuard
}

interface Pending {
  record: AuditRecord
  resolve(e: Evidence): void
  reject(err: Error): void
}

export class AuditUnavailableError extends Error {}

/** A batch chained onto one that was not committed: it was never written. */
class SupersededError extends Error {
  constructor(readonly epoch: number) {
    super('an earlier batch of this chain was not committed')
  }
}

/**
 * The batch failed for what it holds, and the same records would fail again: PostgreSQL
 * refused the statement (SQLSTATE class 22, data exception: 22P05 untranslatable character,
 * 22P02, 22021, …; the statement failed as a whole), or a record has no JSON form (JCS
 * refuses NaN, a BigInt, a cycle). Not a connection error, after which the commit may
 * have landed.
 */
const isDataError = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code.startsWith('22')
  return e instanceof TypeError || e instanceof RangeError || /^jcs:| is not allowed$/.test((e as Error)?.message ?? '')
}

const b64url = (buf: Buffer) => buf.toString('base64url')

export class Sealer {
  private pending: Pending[] = []
  private timer: NodeJS.Timeout | null = null
  /** Batches sealed and not yet settled: at most two (one committing, one waiting). */
  private inflight = 0
  /** Settles when the most recently sealed batch has settled (and so all before it). */
  private lastWrite: Promise<void> = Promise.resolve()
  /** The head the next batch chains onto: the last batch sealed, committed or not. */
  private head: ChainHead | null = null
  /** Bumped on every failure: batches sealed onto an earlier head must not be written. */
  private epoch = 0
  /** The epoch after the last failure that rejected its callers. */
  private hardEpoch = 0
  /** Batches to seal again (halves of a batch refused for its data; superseded batches). */
  private retry: Pending[][] = []
  private closed = false

  /** The evidence format this sealer makes (the records' digests must be of its hash). */
  readonly version: EvidenceVersion
  private readonly hash: ReturnType<typeof hashOfVersion>

  constructor(private readonly opts: SealerOptions) {
    this.version = opts.version ?? 1
    this.hash = hashOfVersion(this.version)
  }

  /** Resolves with the record's evidence once its batch is durable; rejects otherwise. */
  seal(record: AuditRecord): Promise<Evidence> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('sealer is closed'))
    const refused = this.refusal()
    if (refused) return Promise.reject(refused)
    return new Promise((resolve, reject) => {
      this.pending.push({ record, resolve, reject })
      if (this.pending.length >= this.opts.batchMaxSize) this.kick()
      else if (!this.timer && this.inflight === 0) {
        this.timer = setTimeout(() => this.kick(), this.opts.batchWindowMs)
      }
    })
  }

  /** Seals what is pending and waits for every batch in flight. */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.retry.length > 0 || this.inflight > 0) {
      this.kick()
      await this.lastWrite
      // Let the settled batch's bookkeeping run before looking again.
      await new Promise((r) => setImmediate(r))
    }
  }

  async close(): Promise<void> {
    await this.flush()
    this.closed = true
  }

  /** A cut chain seals nothing until an operator acknowledges the cut (high-water.ts). */
  private refusal(): Error | null {
    return this.opts.tail?.refusal() ?? null
  }

  /**
   * The head to chain onto, read back from PostgreSQL: checked against the high-water mark,
   * so that a seq once signed is never signed again (a cut throws instead).
   */
  private chooseHead(): Promise<ChainHead> {
    return this.opts.tail ? this.opts.tail.check() : readHead(this.opts.db, this.opts.chain)
  }

  /** Committed; the mark is raised before the evidence is released (once per batch). */
  private async recordHighWater(cp: Checkpoint, hash: string): Promise<void> {
    await this.opts.tail?.released(cp.seq, hash, cp.time)
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.inflight >= 2 || (this.pending.length === 0 && this.retry.length === 0)) return
    const batch = this.retry.shift() ?? this.pending.splice(0, this.opts.batchMaxSize)
    this.inflight++
    this.commit(batch).finally(() => {
      this.inflight--
      // Whatever arrived meanwhile is the next batch: seal it at once.
      if (this.pending.length > 0 || this.retry.length > 0) this.kick()
    })
  }

  private async commit(batch: Pending[]): Promise<void> {
    const started = performance.now()
    const previous = this.lastWrite
    let settled!: () => void
    this.lastWrite = new Promise<void>((r) => (settled = r))
    try {
      // After a failure the committed head is unknown (the commit may have landed before
      // the connection broke), so it is read back, once the batches before have settled,
      // before anything is chained onto it.
      if (!this.head) {
        await previous
        this.head ??= await this.chooseHead()
      }
      const epoch = this.epoch
      const head = this.head
      const records = batch.map((p) => p.record)
      const json = records.map((r) => jcs(r))
      const leafBufs = json.map((j) => leafHash(j, this.hash))
      const tree = buildTree(leafBufs, this.hash)
      const checkpoint: Checkpoint = {
        // v1 checkpoints have no v at all: their bytes (and hashes) stay what they were.
        ...(this.version === 2 ? { v: 2 as const } : {}),
        node: this.opts.node,
        chain: this.opts.chain,
        seq: head.seq + 1,
        root: tree.root.toString('hex'),
        size: records.length,
        prev: head.hash,
        time: new Date().toISOString(),
        alg: this.opts.signer.alg,
        kid: this.opts.kid,
      }
      const canonical = jcs(checkpoint)
      // = checkpointHash(checkpoint), from the JCS text also signed below.
      const hash = hashHex(this.hash, canonical)
      // The next batch chains onto this one while it is signed and committed: set before
      // the first await, so a batch sealed meanwhile cannot chain onto a stale head.
      this.head = { seq: checkpoint.seq, hash }
      const sig = b64url(await this.opts.signer.signAsync(Buffer.from(canonical)))
      const leaves = leafBufs.map((l) => l.toString('hex'))
      await previous
      if (epoch !== this.epoch) throw new SupersededError(epoch)
      await writeBatch(this.opts.db, { checkpoint, sig, hash, records, leaves, recordsJson: json })
      // Committed: the next batch may be written while this one's mark is made durable.
      settled()
      await this.recordHighWater(checkpoint, hash)
      this.opts.onBatch?.(batch.length, performance.now() - started, true)
      registerBatch(checkpoint, sig)
      for (let i = 0; i < batch.length; i++) {
        batch[i].resolve({
          v: this.version,
          record: records[i],
          index: i,
          size: records.length,
          path: tree.pathHex(i),
          checkpoint,
          sig,
        })
      }
    } catch (e) {
      this.opts.onBatch?.(batch.length, performance.now() - started, false)
      this.failedBatch(batch, e)
    } finally {
      settled()
    }
  }

  /**
   * A batch that was not written. The head is read back before anything is chained again.
   * Refused for its data, it is split in two and each half sealed again (down to the one
   * record at fault, which alone fails); a batch superseded by such a failure is sealed again
   * whole. Re-sealing reuses the seq of a checkpoint that was signed but never written, and
   * that is safe only because nothing of it was ever released: evidence (checkpoint and sig)
   * leaves only after its write succeeded, and a data exception means the one statement that
   * writes checkpoint and records together was rolled back. After any other failure (the
   * connection) the write may have landed, so the batch and those chained onto it fail.
   */
  private failedBatch(batch: Pending[], e: unknown): void {
    this.head = null
    const data = isDataError(e)
    const again = data || (e instanceof SupersededError && e.epoch >= this.hardEpoch)
    this.epoch++
    if (!again) this.hardEpoch = this.epoch
    if (again && !(data && batch.length === 1)) {
      if (data) {
        const half = Math.ceil(batch.length / 2)
        this.retry.push(batch.slice(0, half), batch.slice(half))
      } else this.retry.push(batch)
      return
    }
    const err = new AuditUnavailableError(`audit batch not durable: ${(e as Error).message}`)
    for (const p of batch) p.reject(err)
  }
}
