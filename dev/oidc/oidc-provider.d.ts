// The little of oidc-provider's API the development provider uses (the package ships no types).
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  interface Grant {
    jti: string
    addOIDCScope(scope: string): void
    save(): Promise<string>
  }
  interface Ctx {
    body: unknown
    type: string
    oidc: {
      session?: { accountId?: string; grantIdFor(clientId: string, value?: string): string | undefined }
      client?: { clientId: string }
      provider: Provider
    }
  }
  interface Account {
    accountId: string
    claims(use: string, scope: string): Promise<Record<string, unknown>>
  }
  interface Configuration {
    clients?: object[]
    jwks?: { keys: object[] }
    cookies?: { keys: string[] }
    claims?: Record<string, string[]>
    scopes?: string[]
    ttl?: Record<string, number>
    pkce?: { required?: () => boolean }
    features?: Record<string, unknown>
    interactions?: { url(ctx: Ctx, interaction: { uid: string }): string }
    findAccount?(ctx: Ctx, sub: string): Promise<Account | undefined>
    loadExistingGrant?(ctx: Ctx): Promise<Grant | undefined>
    renderError?(ctx: Ctx, out: { error: string; error_description?: string }, err: Error): Promise<void>
  }
  class Provider {
    constructor(issuer: string, configuration: Configuration)
    Client: { prototype: object }
    Grant: { new (init: { clientId: string; accountId: string }): Grant; find(id: string): Promise<Grant | undefined> }
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ uid: string; prompt: { name: string } }>
    interactionFinished(req: IncomingMessage, res: ServerResponse, result: object, options?: { mergeWithLastSubmission?: boolean }): Promise<void>
  }
  export default Provider
}
