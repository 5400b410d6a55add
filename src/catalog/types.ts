// The catalogue entry as schemas/catalog-entry.schema.json defines it; the schema is the
// source of truth, these types only describe what passed it.

/** 共享类型 (国发〔2016〕51号): per resource and per item. */
export type ShareType = 'unconditional' | 'conditional' | 'none'

/** 开放类型: open data to the public, independent of government sharing. */
export type OpenType = 'open' | 'conditional' | 'none'

export type ItemType = 'string' | 'boolean' | 'integer' | 'number' | 'date' | 'object' | 'array'

export type ResourceFormat = 'api' | 'database' | 'file' | 'spreadsheet' | 'image' | 'media'

export type ShareMethod = 'api' | 'file' | 'database'

export type UpdateCycle = 'realtime' | 'daily' | 'weekly' | 'monthly' | 'quarterly' | 'yearly' | 'irregular'

/**
 * The `{service}` of `POST /v1/verify/{service}`: whatever name a catalogue entry binds
 * (`^[a-z][a-z0-9-]{0,31}$`, checked by the entry schema). Not a union: a new service is a
 * new catalogue entry, with no list to edit (docs/adding-a-service.md).
 */
export type VerifyService = string

/** 信息项: one field of the resource's responses. */
export interface CatalogItem {
  /** The response field name (camelCase). */
  name: string
  title: string
  type: ItemType
  shareType: ShareType
  description?: string
}

export interface Sharing {
  type: ShareType
  /** Required when conditional. */
  condition?: string
  /** Required unless none. */
  method?: ShareMethod
  /** Required when none: why it is not shared. */
  legalBasis?: string
}

export interface Opening {
  type: OpenType
  /** Required when conditional. */
  condition?: string
}

export interface OperationBinding {
  /** Path relative to schemas/. */
  requestSchema: string
  /** Path relative to schemas/; its top-level properties are all catalogue items. */
  responseSchema: string
  /** Request field holding the personal or enterprise identifier (audited as a keyed hash). */
  subjectField?: string
  /** Only idempotent operations are retried. */
  idempotent: boolean
}

export interface UpstreamBinding {
  /** Logical upstream; the node configuration maps it to a base URL. */
  name: string
  method: 'POST'
  path: string
  timeoutMs: number
  retries: number
}

export interface ServiceBinding {
  /** When set, the resource also answers `POST /v1/verify/{verifyService}` with its `verify` operation. */
  verifyService?: VerifyService
  /** Operation name (lower-case) → binding: `POST /v1/resources/{code}/{operation}`. */
  operations: Record<string, OperationBinding>
  upstream: UpstreamBinding
}

export interface CatalogEntry {
  /** 信息资源代码, e.g. `101001/00001`. */
  code: string
  /** Absent means 1. */
  version?: number
  name: string
  category: { code: string; name: string }
  provider: { name: string; code: string; region: string }
  summary: string
  format: ResourceFormat
  items: CatalogItem[]
  sharing: Sharing
  opening: Opening
  updateCycle: UpdateCycle
  /** ISO date, YYYY-MM-DD. */
  publishedAt: string
  related?: string[]
  /** Required unless sharing.type is none. */
  service?: ServiceBinding
}
