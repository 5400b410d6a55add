// Group commit of audit records (DESIGN.md §4): records that arrive within a short window
// (or up to batchMaxSize) become one RFC 9162 Merkle tree whose root is signed once and
// written with its records in one statement. Only then are the callers released, each with
// its evidence. One batch commits at a time, so the chain order is the commit order; the
// next batch fills while the previous one commits, which is what makes batches grow
// under load.
import { jcs } from './jcs.js'
import { buildTree, leafHash } from './merkle.js'
import { checkpointHash, type AuditRecord, type Checkpoint, type Evidence } from './evidence.js'
import { readHead, writeBatch, type ChainHead } from './store.js'
import type { Db } from '../stores/postgres.js'

export interface SealerOptions {
  db: Db
  node: string
  chain: string
  kid: string
  signer: { alg: string; sign(data: Buffer): Buffer }
  batchMaxSize: number
  batchWindowMs: number
  onBatch?: (size: number, ms: number, ok: boolean) => void
}

interface Pending {
  record: AuditRecord
  resolve(e: Evidence): void
  reject(err: Error): void
}

export class AuditUnavailableError extends Error {}

const b64url = (buf: Buffer) => buf.toString('base64url')

export class Sealer {
  private pending: Pending[] = []
  private timer: NodeJS.Timeout | null = null
  private committing: Promise<void> | null = null
  private head: ChainHead | null = null
  private closed = false

  constructor(private readonly opts: SealerOptions) {}

  /** Resolves with the record's evidence once its batch is durable; rejects otherwise. */
  seal(record: AuditRecord): Promise<Evidence> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('sealer is closed'))
    return new Promise((resolve, reject) => {
      this.pending.push({ record, resolve, reject })
      if (this.pending.length >= this.opts.batchMaxSize) this.kick()
      else if (!this.timer && !this.committing) {
        this.timer = setTimeout(() => this.kick(), this.opts.batchWindowMs)
      }
    })
  }

  /** Seals what is pending and waits for every batch in flight. */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.committing) {
      this.kick()
      await this.committing
    }
  }

  async close(): Promise<void> {
    await this.flush()
    this.closed = true
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.committing || this.pending.length === 0) return
    const batch = this.pending.splice(0, this.opts.batchMaxSize)
    this.committing = this.commit(batch).finally(() => {
      this.committing = null
      // Whatever arrived during the commit is the next batch: seal it at once.
      if (this.pending.length > 0) this.kick()
    })
  }

  private async commit(batch: Pending[]): Promise<void> {
    const started = performance.now()
    try {
      // After a failure the committed head is unknown (the commit may have landed before
      // the connection broke), so it is read back before chaining anything onto it.
      this.head ??= await readHead(this.opts.db, this.opts.chain)
      const records = batch.map((p) => p.record)
      const leafBufs = records.map((r) => leafHash(jcs(r)))
      const tree = buildTree(leafBufs)
      const checkpoint: Checkpoint = {
        node: this.opts.node,
        chain: this.opts.chain,
        seq: this.head.seq + 1,
        root: tree.root.toString('hex'),
        size: records.length,
        prev: this.head.hash,
        time: new Date().toISOString(),
        alg: this.opts.signer.alg,
        kid: this.opts.kid,
      }
      const sig = b64url(this.opts.signer.sign(Buffer.from(jcs(checkpoint))))
      const hash = checkpointHash(checkpoint)
      const leaves = leafBufs.map((l) => l.toString('hex'))
      await writeBatch(this.opts.db, { checkpoint, sig, hash, records, leaves })
      this.head = { seq: checkpoint.seq, hash }
      this.opts.onBatch?.(batch.length, performance.now() - started, true)
      for (let i = 0; i < batch.length; i++) {
        batch[i].resolve({
          v: 1,
          record: records[i],
          index: i,
          size: records.length,
          path: tree.path(i).map((h) => h.toString('hex')),
          checkpoint,
          sig,
        })
      }
    } catch (e) {
      this.head = null
      this.opts.onBatch?.(batch.length, performance.now() - started, false)
      const err = new AuditUnavailableError(`audit batch not durable: ${(e as Error).message}`)
      for (const p of batch) p.reject(err)
    }
  }
}
