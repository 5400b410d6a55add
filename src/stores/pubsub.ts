// Cache invalidation across replicas: a change is published on a Redis channel (under the
// node's prefix) and every replica's handler for that topic runs. Subscribing needs a
// connection of its own (Redis puts a subscribed connection in a special mode), made by the
// connection factory: on Sentinel it follows the master, on a Cluster PUBLISH reaches the
// subscribers on every node.
import { redisConnection, type RedisClient, type RedisSettings } from './redis.js'

export type Handler = (message: string) => void

export class InvalidationBus {
  private readonly sub: RedisClient
  private readonly handlers = new Map<string, Handler[]>()
  private readonly prefix: string

  constructor(private readonly pub: RedisClient, cfg: RedisSettings) {
    this.prefix = cfg.prefix
    this.sub = redisConnection(cfg, { lazyConnect: true, maxRetriesPerRequest: null })
    this.sub.on('error', () => {})
    this.sub.on('message', (channel: string, message: string) => {
      for (const h of this.handlers.get(channel) ?? []) h(message)
    })
    // After a reconnect messages may have been missed: tell every topic to reload.
    this.sub.on('ready', () => {
      for (const hs of this.handlers.values()) for (const h of hs) h('*')
    })
  }

  async start(): Promise<void> {
    await this.sub.connect().catch(() => {})
  }

  /** Registers a handler. Never waits for Redis: while it is down the subscription is
   *  queued, and on (re)connect every handler is told to reload. */
  subscribe(topic: string, handler: Handler): void {
    const channel = this.prefix + topic
    this.handlers.set(channel, [...(this.handlers.get(channel) ?? []), handler])
    this.sub.subscribe(channel).catch(() => {})
  }

  /** Publishes a change; the caller's own replica is notified too. */
  async publish(topic: string, message = '*'): Promise<void> {
    // ioredis' keyPrefix does not apply to channels, hence the explicit prefix.
    await this.pub.publish(this.prefix + topic, message)
  }

  close(): void {
    this.sub.disconnect()
  }
}
