import { readFileSync } from 'node:fs';
import { http } from '../../../common/node-builtins.js';
import { request } from 'node:https';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { AppError } from '../../../common/errors.js';
import { Fields, parseFields } from '../../../common/fields.js';

/**
 * POST to the running agent's loopback API with the root-only token in runDir (as `drill` does):
 * the status code and the parsed body. Throws UNAVAILABLE with a reason a person can act on when
 * the agent cannot be reached.
 */
export async function postToAgent(config: Config, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; json: Record<string, unknown> }> {
  let web: { port: number; https: boolean };
  let token: string;
  try {
    web = JSON.parse(readFileSync(join(config.paths.runDir, 'web.json'), 'utf8')) as typeof web;
    token = readFileSync(join(config.paths.runDir, 'api-token'), 'utf8').trim();
  } catch (e) {
    throw new AppError('UNAVAILABLE', `cannot reach the agent (${(e as Error).message}); is it running (systemctl status surgery-edge), and are you root?`);
  }
  const text = JSON.stringify(body);
  const certPath = config.status.tls.certPath || join(config.paths.stateDir, 'tls', 'cert.pem');
  const opts = {
    host: '127.0.0.1',
    port: web.port,
    path,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'x-csrf-token': token, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    // Trust exactly the agent's own certificate; the name check is moot on loopback.
    ...(web.https ? { ca: readFileSync(certPath), checkServerIdentity: () => undefined } : {}),
  };
  const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = (web.https ? request : http.request)(opts, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from the agent within ${Math.round(timeoutMs / 1000)} s`)));
    req.end(text);
  }).catch((e: unknown) => {
    throw new AppError('UNAVAILABLE', `cannot reach the agent on 127.0.0.1:${web.port}: ${(e as Error).message}`);
  });
  let json: Fields;
  try {
    json = parseFields(r.text);
  } catch {
    json = { message: r.text.slice(0, 300) };
  }
  return { status: r.status, json };
}
