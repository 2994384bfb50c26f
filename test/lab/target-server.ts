/**
 * The lab's "internet": one process in the internet namespace answering on every target address.
 *   HTTP/TCP :80  GET /generate_204 -> 204; GET /whoami -> 200 {"you":"<client address>"}
 *   DNS  udp :53  answers any A query with 192.0.2.1 (TEST-NET-1), echoing the id.
 * Prints "ready" on stdout when both listeners are bound. Node builtins only.
 */
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';

const http = createServer((req, res) => {
  if (req.url === '/generate_204') {
    res.writeHead(204).end();
    return;
  }
  const you = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  res.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ you }));
});
http.keepAliveTimeout = 1000;

const dns = createSocket('udp4');
dns.on('message', (q, rinfo) => {
  if (q.length < 12) return;
  // Header: same id, QR=1 RD RA, 1 question, 1 answer; question copied; answer via name pointer.
  let end = 12;
  while (end < q.length && q[end] !== 0) end += q[end]! + 1;
  const question = q.subarray(12, end + 5);
  const header = Buffer.alloc(12);
  q.copy(header, 0, 0, 2);
  header.writeUInt16BE(0x8180, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(1, 6);
  const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1]);
  dns.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
});

let ready = 0;
const up = () => {
  if (++ready === 2) process.stdout.write('ready\n');
};
http.listen(80, '0.0.0.0', up);
dns.bind(53, '0.0.0.0', up);
process.on('SIGTERM', () => process.exit(0));
