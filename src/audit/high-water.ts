// The high-water mark of each audit chain: the newest checkpoint this node has signed and
// released, kept outside the table it protects, so that a tail cut out of PostgreSQL (the
// newest batches deleted, with their audit_anchors rows) is seen, and no seq is signed twice.
//
// Where: a small JSON file per chain (`<state dir>/<chain>.json`, default under the PKI dir),
// replaced atomically (temp + fsync + rename + fsync of the directory), and a copy in Redis
// (hash `audit:hwm`, only ever raised). The file is what release waits for; Redis is a
// second copy for the integrity check of other replicas' chains and for a lost disk.
//
// When: once per batch, after PostgreSQL has committed it and before its evidence is
// released (the Sealer). So the mark is never ahead of what was committed: after a failed or
// unknown commit it is the previous batch's, and PostgreSQL's head is at the mark or past it
// (a commit that landed unseen). PostgreSQL behind the mark, or another checkpoint at its
// seq, can therefore only be a deletion: a cut. (Writing the mark before or alongside the
// commit would leave the last batch ambiguous after a crash — failed write or deleted? —
// which is exactly the batch a cut removes.)
//
// A cut (TailGuard.check): a `cut` row in audit_alarms (append-only) and in the file, an
// error log line, tongban_audit_chain_cut{chain} = 1, /readyz 503 naming the chain, and the
// chain refuses to seal until an operator records `cut-acknowledged` for that very mark
// (`tongban audit acknowledge-cut`). The chain then resumes at mark + 1 with prev = the
// mark's hash (store.ts accepts that one resume point): the deleted seqs are never reused,
// and integrity reports the gap as an acknowledged `cut` for good.
import { mkdirSync, readFileSync } from 'node:fs'
import { open, rename, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { RedisClient } from '../stores/redis.js'
import type { Db } from '../stores/postgres.js'
import { readHead, type ChainHead } from './store.js'

export interface Mark {
  chain: string
  seq: number
  hash: string
  time: string
  /** Set while a cut of this chain is recorded and not acknowledged. */
  cut?: { committedSeq: number; committedHash: string; detectedAt: string }
}

const REDIS_KEY = 'audit:hwm'
// Raises the stored mark only: replicas, restarts and late writes never lower it.
const RAISE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, m = pcall(cjson.decode, cur)
  if ok and tonumber(m.seq) and tonumber(m.seq) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`

const fileName = (chain: string) => `${encodeURIComponent(chain)}.json`

function parseMark(text: string | null | undefined): Mark | null {
  if (!text) return null
  try {
    const m = JSON.parse(text)
    return typeof m?.chain === 'string' && Number.isInteger(m.seq) && typeof m.hash === 'string' ? m : null
  } catch {
    return null
  }
}

interface ChainWrites {
  running: Promise<void> | null
  queued: { mark: Mark; done: Promise<void>; settle(e?: Error): void } | null
  durableSeq: number
}

const higher = (a: Mark | null, b: Mark | null) => (!a ? b : !b ? a : b.seq > a.seq ? b : a)

/** The marks on disk and in Redis. */
export class HighWaterStore {
  private dirHandle: Promise<FileHandle> | null = null
  /** Per chain: the file write in flight and the (coalesced) next one; never two at once. */
  private readonly chains = new Map<string, ChainWrites>()

  constructor(
    readonly dir: string,
    private readonly redis: RedisClient | null = null,
    private readonly onRedisError: (e: Error) => void = () => {},
  ) {}

  private fileMark(chain: string): Mark | null {
    try {
      return parseMark(readFileSync(join(this.dir, fileName(chain)), 'utf8'))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw e
    }
  }

  private async redisMarks(chain?: string): Promise<Mark[]> {
    if (!this.redis) return []
    try {
      const texts = chain !== undefined
        ? [await withTimeout(this.redis.hget(REDIS_KEY, chain), 1000)]
        : Object.values((await withTimeout(this.redis.hgetall(REDIS_KEY), 1000)) ?? {})
      return texts.map(parseMark).filter((m): m is Mark => m !== null)
    } catch (e) {
      this.onRedisError(e as Error)
      return []
    }
  }

  /** The higher of the file's and Redis' mark (null: none yet, e.g. a new node). */
  async load(chain: string): Promise<Mark | null> {
    const [fromRedis] = await this.redisMarks(chain)
    return higher(this.fileMark(chain), fromRedis ?? null)
  }

  /**
   * The marks of these chains in local files, and every chain's in Redis (scoped to the
   * node by its key prefix). Files are read by name only: a state directory may be shared.
   */
  async all(chains: string[]): Promise<Mark[]> {
    const by = new Map<string, Mark>()
    const put = (m: Mark | null) => m && by.set(m.chain, higher(by.get(m.chain) ?? null, m)!)
    for (const chain of new Set(chains)) put(this.fileMark(chain))
    for (const m of await this.redisMarks()) put(m)
    return [...by.values()].sort((a, b) => a.chain.localeCompare(b.chain))
  }

  /**
   * Durably replaces the chain's file; raises the Redis copy without waiting for it. Marks
   * arriving while a write is in flight are coalesced (group commit): the newest is written
   * next, once, and settles all of them — under load one fsync covers several batches.
   */
  write(mark: Mark): Promise<void> {
    let s = this.chains.get(mark.chain)
    if (!s) this.chains.set(mark.chain, (s = { running: null, queued: null, durableSeq: 0 }))
    if (s.queued) {
      if (mark.seq >= s.queued.mark.seq) s.queued.mark = mark
      return s.queued.done
    }
    let settle!: (e?: Error) => void
    const done = new Promise<void>((resolve, reject) => (settle = (e) => (e ? reject(e) : resolve())))
    s.queued = { mark, done, settle }
    this.kick(s)
    return done
  }

  private kick(s: ChainWrites): void {
    if (s.running || !s.queued) return
    const g = s.queued
    s.queued = null
    const m = g.mark
    // Never lower the file (a late, smaller mark): the higher one already covers it.
    const write = m.seq < s.durableSeq ? Promise.resolve() : this.writeFile(m)
    s.running = write.then(
      () => {
        s.durableSeq = Math.max(s.durableSeq, m.seq)
        g.settle()
        this.raiseRedis(m)
      },
      (e: Error) => g.settle(e),
    ).finally(() => {
      s.running = null
      this.kick(s)
    })
  }

  private raiseRedis(mark: Mark): void {
    if (!this.redis) return
    withTimeout(this.redis.eval(RAISE, 1, REDIS_KEY, mark.chain, mark.seq, JSON.stringify(mark)), 1000).catch((e) => this.onRedisError(e as Error))
  }

  private async writeFile(mark: Mark): Promise<void> {
    const file = join(this.dir, fileName(mark.chain))
    const tmp = `${file}.tmp`
    // The rename is durable only once the directory is: its handle is kept open.
    this.dirHandle ??= (this.ensureDir(), open(this.dir, 'r'))
    const dir = await this.dirHandle
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(mark) + '\n')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
    await dir.sync()
  }

  ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
  }

  async close(): Promise<void> {
    await Promise.all([...this.chains.values()].flatMap((c) => [c.running, c.queued?.done]).map((p) => p?.catch(() => {})))
    const d = this.dirHandle
    this.dirHandle = null
    if (d) await (await d).close().catch(() => {})
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`redis: no answer in ${ms} ms`)), ms)
    p.then((v) => (clearTimeout(t), resolve(v)), (e) => (clearTimeout(t), reject(e)))
  })
}

/** Sealing refused: the chain was cut and no operator has acknowledged it yet. */
export class ChainCutError extends Error {
  constructor(readonly chain: string, readonly detail: string) {
    super(detail)
  }
}

export interface CutInfo {
  chain: string
  committedSeq: number
  committedHash: string
  hwmSeq: number
  hwmHash: string
  detectedAt: string
  detail: string
}

export interface TailGuardOptions {
  db: Db
  node: string
  chain: string
  store: HighWaterStore
  log: { error(o: object, m: string): void; warn(o: object, m: string): void; info(o: object, m: string): void }
  /** The alarm metric: 1 while the chain is cut and unacknowledged, 0 otherwise. */
  onCutState?: (chain: string, cut: boolean) => void
}

const ACK_FOR = `SELECT acknowledged_by, reason, at FROM audit_alarms
  WHERE chain = $1 AND kind = 'cut-acknowledged' AND hwm_seq = $2 AND hwm_hash = $3 ORDER BY id LIMIT 1`

/** One chain's guard: chooses the head to chain onto, records marks, detects cuts. */
export class TailGuard {
  private mark: Mark | null | undefined
  private cut: CutInfo | null = null
  private recheck: Promise<unknown> | null = null
  private lastRecheck = 0

  constructor(private readonly o: TailGuardOptions) {}

  get chain(): string {
    return this.o.chain
  }

  get store(): HighWaterStore {
    return this.o.store
  }

  /** The unacknowledged cut this node knows of, if any. */
  current(): CutInfo | null {
    return this.cut
  }

  /**
   * While cut: the error to refuse sealing with (and, at most once a second, a look for
   * the operator's acknowledgement). Null: seal.
   */
  refusal(): ChainCutError | null {
    if (!this.cut) return null
    if (!this.recheck && Date.now() - this.lastRecheck >= 1000) {
      this.lastRecheck = Date.now()
      this.recheck = this.check().catch(() => {}).finally(() => (this.recheck = null))
    }
    return this.cut ? new ChainCutError(this.o.chain, this.cut.detail) : null
  }

  /**
   * The head the next batch chains onto: PostgreSQL's committed head, checked against the
   * mark. Throws ChainCutError on a cut (recorded first), and whatever readHead throws while
   * PostgreSQL is unreachable (not a cut).
   */
  async check(): Promise<ChainHead> {
    // The mark first, then the head: a mark is written only after its batch committed, so
    // the head read afterwards is at it or past it unless rows were deleted.
    this.mark ??= await this.o.store.load(this.o.chain)
    const mark = this.mark
    const head = await readHead(this.o.db, this.o.chain)
    if (!mark || head.seq > mark.seq || (head.seq === mark.seq && head.hash === mark.hash)) {
      this.clear()
      return head
    }
    const { rows: [ack] } = await this.o.db.query(ACK_FOR, [this.o.chain, mark.seq, mark.hash])
    if (ack) {
      if (this.cut) this.o.log.info({ chain: this.o.chain, by: ack.acknowledged_by }, 'audit chain cut acknowledged; sealing resumes after the high-water mark')
      this.clear()
      // Resume after the mark: never under a seq already signed.
      return { seq: mark.seq, hash: mark.hash }
    }
    await this.recordCut(head, mark)
    throw new ChainCutError(this.o.chain, this.cut!.detail)
  }

  /** After the batch committed, before its evidence is released. */
  async released(seq: number, hash: string, time: string): Promise<void> {
    const mark: Mark = { chain: this.o.chain, seq, hash, time }
    await this.o.store.write(mark)
    // Coalesced writes settle together: keep the highest.
    if (!this.mark || seq > this.mark.seq) this.mark = mark
  }

  private clear(): void {
    if (!this.cut) return
    this.cut = null
    this.o.onCutState?.(this.o.chain, false)
  }

  private async recordCut(head: ChainHead, mark: Mark): Promise<void> {
    if (this.cut && this.cut.committedSeq === head.seq && this.cut.hwmSeq === mark.seq) return
    const detectedAt = new Date().toISOString()
    const detail = head.seq < mark.seq
      ? `audit chain ${this.o.chain} was cut: this node signed up to #${mark.seq}, the log ends at #${head.seq}; sealing on it stops until an operator runs tongban audit acknowledge-cut --chain ${this.o.chain}`
      : `audit chain ${this.o.chain} was rewritten: checkpoint #${mark.seq} in the log is not the one this node signed; sealing on it stops until an operator runs tongban audit acknowledge-cut --chain ${this.o.chain}`
    this.cut = { chain: this.o.chain, committedSeq: head.seq, committedHash: head.hash, hwmSeq: mark.seq, hwmHash: mark.hash, detectedAt, detail }
    this.o.onCutState?.(this.o.chain, true)
    this.o.log.error({ chain: this.o.chain, committedSeq: head.seq, highWaterSeq: mark.seq }, detail)
    try {
      // One row per cut (the same mark and head), however often it is seen again.
      await this.o.db.query(
        `INSERT INTO audit_alarms (chain, kind, node, committed_seq, committed_hash, hwm_seq, hwm_hash, detail)
         SELECT $1, 'cut', $2, $3, $4, $5, $6, $7
         WHERE NOT EXISTS (SELECT 1 FROM audit_alarms WHERE chain = $1 AND kind = 'cut' AND hwm_seq = $5 AND hwm_hash = $6 AND committed_seq = $3)`,
        [this.o.chain, this.o.node, head.seq, head.hash, mark.seq, mark.hash, detail],
      )
    } catch (e) {
      this.o.log.error({ err: e, chain: this.o.chain }, 'the audit chain cut could not be recorded in audit_alarms (it is in the high-water file)')
    }
    try {
      await this.o.store.write({ ...mark, cut: { committedSeq: head.seq, committedHash: head.hash, detectedAt } })
    } catch (e) {
      this.o.log.error({ err: e, chain: this.o.chain }, 'the audit chain cut could not be recorded in the high-water file')
    }
  }
}

/** A cut recorded in audit_alarms, with its acknowledgement if there is one. */
export interface RecordedCut {
  chain: string
  fromSeq: number
  toSeq: number
  /** The hash of the last signed checkpoint cut (#toSeq): the prev of the batch after the gap. */
  hwmHash: string
  detectedAt: string
  acknowledged: { by: string; at: string; reason: string } | null
}

export async function recordedCuts(db: Db, chain?: string): Promise<RecordedCut[]> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (c.chain, c.hwm_seq, c.hwm_hash) c.chain, c.committed_seq, c.hwm_seq, c.hwm_hash, c.at,
       a.acknowledged_by, a.reason, a.at AS ack_at
     FROM audit_alarms c
     LEFT JOIN LATERAL (SELECT * FROM audit_alarms a WHERE a.chain = c.chain AND a.kind = 'cut-acknowledged'
       AND a.hwm_seq = c.hwm_seq AND a.hwm_hash = c.hwm_hash ORDER BY a.id LIMIT 1) a ON true
     WHERE c.kind = 'cut' ${chain !== undefined ? 'AND c.chain = $1' : ''}
     ORDER BY c.chain, c.hwm_seq, c.hwm_hash, c.committed_seq`,
    chain !== undefined ? [chain] : [],
  )
  return rows.map((r) => ({
    chain: r.chain,
    fromSeq: Math.min(Number(r.committed_seq) + 1, Number(r.hwm_seq)),
    toSeq: Number(r.hwm_seq),
    hwmHash: r.hwm_hash,
    detectedAt: (r.at as Date).toISOString(),
    acknowledged: r.acknowledged_by ? { by: r.acknowledged_by, at: (r.ack_at as Date).toISOString(), reason: r.reason } : null,
  }))
}

/** The marks to check the log against: this node's chains (in the log or cut), from file and Redis. */
export async function knownMarks(db: Db, store: HighWaterStore, ownChains: string[]): Promise<Mark[]> {
  const { rows } = await db.query(
    `SELECT chain FROM (SELECT DISTINCT chain FROM audit_checkpoints UNION SELECT DISTINCT chain FROM audit_alarms) c`,
  )
  return store.all([...ownChains, ...rows.map((r) => r.chain as string)])
}
