export interface ReplicationState {
  application_name: string
  state: string
  sync_state: string
  caught_up: boolean
}

export interface PgPair {
  dir: string
  primaryPort: number
  standbyPort: number
  primaryUrl: string
  standbyUrl: string
  /** TONGBAN_PG_URL, TONGBAN_PG_HOSTS, TONGBAN_PG_READ_URL, TONGBAN_PG_SYNC_COMMIT for a gateway. */
  env: Record<string, string>
  replication(): Promise<ReplicationState | undefined>
  stopPrimary(): Promise<void>
  promoteStandby(): Promise<void>
  stop(): Promise<void>
}

export declare function freePort(): Promise<number>
export declare function replicationState(primaryPort: number): Promise<ReplicationState | undefined>
export declare function startPgPair(opts: {
  dir?: string
  log?: (line: string) => void
  standbyConnectsTo?: (primaryPort: number) => Promise<number>
}): Promise<PgPair>
