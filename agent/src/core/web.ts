import type { FastifyPluginAsync } from 'fastify';

/**
 * Capabilities that serve pages or API routes on the LAN (records viewer, status, drills) register a
 * fastify plugin here during their start(); the status capability, started last, builds the one
 * HTTPS server from every registered plugin. Auth (agent/src/auth) is applied by that server.
 */
export interface WebPlugin {
  name: string;
  plugin: FastifyPluginAsync;
}

export class WebRegistry {
  private readonly items: WebPlugin[] = [];
  register(name: string, plugin: FastifyPluginAsync): void {
    this.items.push({ name, plugin });
  }
  plugins(): readonly WebPlugin[] {
    return this.items;
  }
  clear(): void {
    this.items.length = 0;
  }
}
