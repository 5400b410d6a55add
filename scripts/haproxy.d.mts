import type { ChildProcess } from 'node:child_process'
export interface HaproxyServer {
  name: string
  host: string
  port: number
  nodePort?: number
}
export interface HaproxyCheck {
  interMs?: number
  fall?: number
  rise?: number
}
export interface ConfigOptions {
  host?: string
  port: number
  servers: HaproxyServer[]
  nodePort?: number | null
  statsPort?: number | null
  socket?: string | null
  check?: HaproxyCheck
  maxconn?: number
}
export interface ServerStat {
  backend: string
  server: string
  status: string
  sessions: number
  current: number
  http2xx: number
  http5xx: number
  downs: number
  lastChange: number
}
export interface Haproxy {
  url: string
  port: number
  nodePort: number | null
  configFile: string
  socket: string
  pid: number
  child: ChildProcess
  output(): string
  stats(): Promise<ServerStat[]>
  waitFor(server: string, status: string, ms?: number): Promise<ServerStat>
  stop(): Promise<void>
}
export function findHaproxy(): string | null
export function ensureHaproxy(o?: { log?: (m: string) => void }): string
export function haproxyConfig(o: ConfigOptions): string
export function checkConfig(file: string, bin?: string | null): string | null
export function socketCommand(socket: string, command: string, timeoutMs?: number): Promise<string>
export function serverStats(socket: string): Promise<ServerStat[]>
export function startHaproxy(o: ConfigOptions & { dir: string; log?: (m: string) => void; waitUp?: boolean; timeoutMs?: number }): Promise<Haproxy>
export const SCRIPT: string
