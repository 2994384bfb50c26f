import type { FastifyPluginAsync } from 'fastify';

/**
 * Capabilities that serve pages or API routes on the LAN (status page, records viewer and unlock
 * page, set-up wizard) register a fastify plugin here during their start(). The agent builds the
 * one LAN web server (agent/src/web/server.ts) after every capability has started, from every
 * registered plugin, with auth, CSRF, rate limits and security headers in front of all of them.
 */
export interface WebPlugin {
  name: string;
  plugin: FastifyPluginAsync;
}

export class WebRegistry {
  private readonly items: WebPlugin[] = [];
  private served: string | null = null;

  register(name: string, plugin: FastifyPluginAsync): void {
    this.items.push({ name, plugin });
  }
  plugins(): readonly WebPlugin[] {
    return this.items;
  }
  clear(): void {
    this.items.length = 0;
  }

  /** The server's address while it listens (the status capability reports it), else null. */
  get url(): string | null {
    return this.served;
  }
  /** Called by the web server: its address once listening, null once closed. */
  listening(url: string | null): void {
    this.served = url;
  }
}
