import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { describeError } from '../../../common/errors.js';
import type { Component, ComponentHealth, FleetCtx } from '../ctx.js';
import { Claims } from './claims.js';

const STATUS: Record<string, number> = { BAD_REQUEST: 400, FORBIDDEN: 403, LOCKED_OUT: 429, NOT_FOUND: 404, CONFLICT: 409 };

/**
 * The enrolment endpoint boxes claim themselves through (HTTPS, the certificate from the ICB CA
 * that boxes pin): POST /enrol/v1/requests {csr, commitment} and GET /enrol/v1/requests/:id.
 * No client certificate (a new box has none) and nothing secret in or out: a CSR, a commitment,
 * and once claimed the box's public certificate, the CA and the broker URLs.
 */
export class EnrolmentEndpoint implements Component {
  readonly name = 'enrolment';
  app: FastifyInstance | undefined;
  url = '';
  private why = 'claim.enabled is false';

  async start(ctx: FleetCtx): Promise<void> {
    const c = ctx.config.claim;
    if (!c.enabled) return;
    if (!c.tlsCertPath || !c.tlsKeyPath || !c.caCertPath || !c.caKeyPath) {
      this.why = 'claim.tlsCertPath, tlsKeyPath, caCertPath and caKeyPath are not all set';
      ctx.log.warn('claiming disabled', { why: this.why });
      return;
    }
    const claims = new Claims(ctx);
    // Claimed boxes keep their practice and name across a fleet restart (oldest first: the newest claim wins).
    for (const r of (await claims.store.list('claimed', 100_000)).reverse()) {
      if (r.device_id && r.ods_code) ctx.inventory.claimed(r.device_id, r.ods_code, r.practice_name);
    }
    const app = Fastify({
      logger: false,
      bodyLimit: 16 * 1024,
      https: { cert: readFileSync(c.tlsCertPath), key: readFileSync(c.tlsKeyPath), minVersion: 'TLSv1.2' },
    });
    app.setErrorHandler((err, req, reply) => {
      const d = describeError(err);
      const code = STATUS[d.code] ?? (err as { statusCode?: number }).statusCode ?? 500;
      if (code >= 500) ctx.log.error('enrolment request failed', { url: req.url, ...d });
      return reply.code(code).send({ error: code >= 500 ? 'internal error' : d.message });
    });
    app.post('/enrol/v1/requests', async (req, reply) => {
      const b = (req.body ?? {}) as { csr?: unknown; commitment?: unknown };
      return reply.code(201).send(await claims.submit(b.csr, b.commitment, req.ip));
    });
    app.get('/enrol/v1/requests/:id', async (req, reply) => {
      const id = (req.params as { id: string }).id;
      if (!/^[A-Za-z0-9_-]{16,64}$/.test(id)) return reply.code(404).send({ status: 'unknown' });
      const a = await claims.poll(id);
      return reply.code(a.http).send(a.body);
    });
    await app.listen({ host: c.host, port: c.port });
    const a = app.server.address() as AddressInfo;
    this.url = `https://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
    this.app = app;
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }

  health(): ComponentHealth {
    return this.app ? { status: 'ok', summary: `enrolment endpoint on ${this.url}` } : { status: 'disabled', summary: `claiming disabled: ${this.why}` };
  }
}
