import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';
import type { Commander } from '../commands/commander.js';
import { registerActions } from './actions.js';
import { registerAlertPages } from './alert-pages.js';
import { registerCampaignPages } from './campaign-pages.js';
import { CLIENT_JS } from './client.js';
import { registerClaimPages } from './claim-page.js';
import { registerAccountPages } from './account-pages.js';
import { need, registerAuth } from './auth.js';
import { registerDevicePage } from './device-page.js';
import { layout, e } from './html.js';
import { registerConfigPages } from './config-pages.js';
import { registerListPage } from './list-page.js';
import { registerRolloutPages } from './rollout-pages.js';
import { registerReports } from './reports.js';
import { dashboardTls, type DashboardTls } from './tls.js';
import { registerUserPages } from './user-pages.js';

/**
 * The dashboard: fastify, server-rendered pages; one small script of our own (client.ts) adds live
 * updates and phone niceties, and every page works without it.
 */
export class WebServer implements Component {
  readonly name = 'web';
  app: FastifyInstance | undefined;
  url = '';
  /** Every route registered (method, url pattern): the browser tests visit each GET page at phone width. */
  readonly routes: { method: string; url: string }[] = [];
  private ctx!: FleetCtx;
  commander: Commander | undefined;
  tls: DashboardTls | undefined;

  constructor(private readonly fleetHealth: () => Record<string, ComponentHealth>) {}

  async start(ctx: FleetCtx): Promise<void> {
    this.ctx = ctx;
    const tls = dashboardTls(ctx.config);
    if (tls?.selfSigned)
      ctx.log.warn(
        'DASHBOARD IS USING A SELF-SIGNED CERTIFICATE: browsers will warn, and users cannot tell this server from an impostor. Set http.tls.certPath ' +
          "and keyPath to a certificate from the ICB's CA.",
        { certPath: tls.certPath },
      );
    if (!tls && !/^(127\.|::1$|localhost$)/.test(ctx.config.http.host))
      ctx.log.warn(
        'DASHBOARD IS PLAIN HTTP on a network address: passwords and session cookies cross the network readable. Set http.tls.enabled (or put it ' +
          'behind an HTTPS reverse proxy).',
        { host: ctx.config.http.host },
      );
    this.tls = tls;
    const app = Fastify({
      logger: false,
      bodyLimit: 256 * 1024,
      trustProxy: ctx.config.http.trustProxy,
      ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    });
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      } catch (err) {
        done(err as Error, undefined);
      }
    });
    app.addHook('onSend', async (_req, reply, payload) => {
      reply.header(
        'content-security-policy',
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; " +
          "frame-ancestors 'none'",
      );
      reply.header('x-content-type-options', 'nosniff');
      if (tls) reply.header('strict-transport-security', 'max-age=31536000');
      return payload;
    });
    app.setErrorHandler((err, req, reply) => {
      const d = describeError(err);
      const code = (err as { statusCode?: number }).statusCode ?? (d.code === 'BAD_REQUEST' ? 400 : d.code === 'NOT_FOUND' ? 404 : 500);
      if (code >= 500) ctx.log.error('request failed', { url: req.url, ...d });
      return reply
        .code(code)
        .type('text/html')
        .send(layout('Error', null, `<h1>Error</h1><p>${e(code >= 500 ? 'Something went wrong; it has been logged.' : d.message)}</p>`));
    });
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat()) this.routes.push({ method, url: r.url });
    });
    app.get('/static/fleet.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'max-age=300').send(CLIENT_JS));
    registerAuth(app, ctx, { secure: !!tls });
    registerListPage(app, ctx);
    registerDevicePage(app, ctx);
    if (this.commander) registerActions(app, ctx, this.commander);
    registerAlertPages(app, ctx);
    registerReports(app, ctx);
    registerConfigPages(app, ctx);
    registerRolloutPages(app, ctx);
    registerCampaignPages(app, ctx);
    registerUserPages(app, ctx);
    registerAccountPages(app, ctx);
    registerClaimPages(app, ctx);
    app.get('/healthz', async () => ({ ok: true }));
    app.get('/api/health', { preHandler: need('icb-admin', 'icb-viewer') }, async () => ({
      components: this.fleetHealth(),
      counters: await ctx.store.devices.counters(),
    }));
    await app.listen({ host: ctx.config.http.host, port: ctx.config.http.port });
    const a = app.server.address() as AddressInfo;
    this.url = `${tls ? 'https' : 'http'}://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
    this.app = app;
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }

  health(): ComponentHealth {
    return this.app ? { status: 'ok', summary: `dashboard on ${this.url}` } : { status: 'failed', summary: 'not listening' };
  }
}
