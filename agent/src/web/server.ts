import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../core/capability.js';
import { writeFileAtomic } from '../core/fs.js';
import { adminUsersPlugin } from '../auth/admin-page.js';
import { buildWebApp } from './app.js';

export interface WebServerOptions {
  /** Tests: serve plain HTTP whatever config.status.https says. */
  https?: false;
}

/**
 * The one LAN web server, built by the agent after every capability has started: the routes the
 * capabilities registered in ctx.web (status page, records viewer and unlock page, set-up wizard),
 * plus sign-in (auth/plugin.ts) and the staff accounts page (auth/admin-page.ts), behind one set of
 * protections (web/app.ts). It listens only when config.status.enabled and some capability serves
 * pages, so an agent with no pages (a test's stand-ins) opens no port.
 *
 * Files for the local CLI (`surgery-edge drill`): runDir/api-token (0600, a loopback-only admin
 * bearer token, new on every start) and runDir/web.json (port, https, pid).
 */
export class WebServer {
  private server: FastifyInstance | undefined;
  private ctx: Ctx | undefined;

  constructor(private readonly opts: WebServerOptions = {}) {}

  async start(ctx: Ctx): Promise<void> {
    this.ctx = ctx;
    const cfg = ctx.config.status;
    if (!cfg.enabled || ctx.web.plugins().length === 0) return;
    const https = this.opts.https !== false && cfg.https;
    const localToken = randomBytes(32).toString('base64url');
    writeFileAtomic(join(ctx.config.paths.runDir, 'api-token'), localToken, 0o600);
    const plugins = [...ctx.web.plugins(), { name: 'admin-users', plugin: adminUsersPlugin(ctx) }];
    this.server = await buildWebApp(ctx, { ...(https ? {} : { https: false as const }), localToken, plugins });
    const addr = await this.server.listen({ host: cfg.listen, port: cfg.port });
    writeFileAtomic(join(ctx.config.paths.runDir, 'web.json'), JSON.stringify({ port: this.port, https, pid: process.pid }));
    ctx.web.listening(addr);
    ctx.log.child('web').info('status page listening', { url: addr });
  }

  async stop(): Promise<void> {
    this.ctx?.web.listening(null);
    if (this.server) {
      // SSE streams (the live status page) are hijacked connections: close them or close() waits for ever.
      this.server.server.closeAllConnections?.();
      await this.server.close();
    }
    this.server = undefined;
  }

  /** The running fastify instance (tests use inject()). */
  get app(): FastifyInstance | undefined {
    return this.server;
  }

  /** The port actually bound (tests listen on port 0). */
  get port(): number | undefined {
    return this.server ? (this.server.server.address() as { port: number }).port : undefined;
  }
}
