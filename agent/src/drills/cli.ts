import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { http } from '../../../common/node-builtins.js';
import { join } from 'node:path';
import { configPathFrom, parse } from '../core/cli-args.js';
import type { CliCommand } from '../core/cli-command.js';
import { loadConfig } from '../config/load.js';
import type { DrillResult } from './store.js';

/**
 * `surgery-edge drill`: asks the running agent (loopback HTTPS, the 0600 token in runDir that only
 * root can read) to run a drill now, waits for it and prints each step. Exit 0 passed, 1 failed
 * or agent unreachable.
 */
export const drillCommand: CliCommand = {
  summary: 'drill [--json]: run a backup drill now in the running agent and print each step',
  async run(args) {
    const { values } = parse(args, { json: { type: 'boolean' }, config: { type: 'string', short: 'c' } });
    const path = configPathFrom(values.config);
    const config = loadConfig(path);
    let web: { port: number; https: boolean };
    let token: string;
    try {
      web = JSON.parse(readFileSync(join(config.paths.runDir, 'web.json'), 'utf8')) as typeof web;
      token = readFileSync(join(config.paths.runDir, 'api-token'), 'utf8').trim();
    } catch (e) {
      process.stderr.write(`surgery-edge: cannot reach the agent (${(e as Error).message}); is it running, and are you root?\n`);
      return 1;
    }
    const certPath = config.status.tls.certPath || join(config.paths.stateDir, 'tls', 'cert.pem');
    const body = '{}';
    const opts = {
      host: '127.0.0.1',
      port: web.port,
      path: '/api/actions/drill',
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'x-csrf-token': token, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      // Trust exactly the agent's own certificate; the name check is moot on loopback.
      ...(web.https ? { ca: readFileSync(certPath), checkServerIdentity: () => undefined } : {}),
    };
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = (web.https ? request : http.request)(opts, (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (t += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
      });
      req.on('error', reject);
      req.setTimeout(15 * 60_000, () => req.destroy(new Error('timed out waiting for the drill')));
      req.end(body);
    }).catch((e: unknown) => ({ status: 0, text: (e as Error).message }));
    if (status !== 200) {
      process.stderr.write(`surgery-edge: drill request failed (${status || 'no connection'}): ${text.slice(0, 300)}\n`);
      return 1;
    }
    const r = JSON.parse(text) as DrillResult;
    if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else {
      process.stdout.write(`drill ${r.id}: ${r.passed ? 'PASSED' : 'FAILED'}\n`);
      for (const s of r.steps) {
        const figs = s.figures
          ? ' ' +
            Object.entries(s.figures)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')
          : '';
        process.stdout.write(`  [${s.passed ? 'ok  ' : 'FAIL'}] ${s.name}: ${s.detail}${figs}\n`);
      }
    }
    return r.passed ? 0 : 1;
  },
};
