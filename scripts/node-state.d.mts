export interface NodeState {
  url: string
  pid: number
  startedAt: string
}
export function readStates(file: string): Record<string, NodeState>
export function recordNode(file: string, port: number | string, url: string, pid?: number): void
export function forgetNode(file: string, port: number | string, pid?: number): void
