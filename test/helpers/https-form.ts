import { request } from 'node:https';

export interface FormResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface FormRequest {
  form?: Record<string, string>;
  cookie?: string;
  /** Local source address (a 127.0.0.x), so per-address limits can be tested. */
  from?: string;
}

/**
 * A raw HTTPS client for a dashboard on 127.0.0.1 with a self-signed certificate for `localhost`:
 * form posts and cookies by hand, no redirects followed, so a test sees exactly what the server
 * answered. `target()` is read per request (port and certificate are known only once it listens).
 */
export function formClient(target: () => { port: number; ca: Buffer }) {
  return (method: string, path: string, o: FormRequest = {}): Promise<FormResponse> =>
    new Promise((res, rej) => {
      const { port, ca } = target();
      const body = o.form ? new URLSearchParams(o.form).toString() : undefined;
      const r = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method,
          ca,
          servername: 'localhost',
          localAddress: o.from ?? '127.0.0.1',
          headers: { ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...(o.cookie ? { cookie: o.cookie } : {}) },
        },
        (m) => {
          let b = '';
          m.on('data', (c: Buffer) => (b += c.toString()));
          m.on('end', () => res({ status: m.statusCode!, headers: m.headers, body: b }));
        },
      );
      r.on('error', rej);
      r.end(body);
    });
}
