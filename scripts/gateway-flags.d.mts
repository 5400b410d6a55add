export declare const GATEWAY_NODE_FLAGS: string[]
export declare const SUITE_ENV: Record<'rsa' | 'sm2', Record<string, string>>
export declare function suiteEnv(suite: string, nodeId?: string): Record<string, string>
