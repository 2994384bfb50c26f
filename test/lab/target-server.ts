/**
 * The lab's "internet": one process in the internet namespace answering on every target address.
 *   HTTP/TCP :80  GET /generate_204 -> 204; GET /whoami -> 200 {"you":"<client address>"}
 *   DNS  udp :53  answers any A query with 192.0.2.1 (TEST-NET-1), echoing the id.
 * usage: target-server.ts ADDR... (the target addresses; DNS binds one socket to each).
 * Prints "ready" on stdout when every listener is bound. Node builtins only.
 *
 * Why one DNS socket per address, not one on 0.0.0.0: a UDP reply from a wildcard socket leaves
 * from the address the route picks (here the link toward the ISP), not the address the query was
 * sent to. The appliance's own probe accepts that, but a LAN PC's query is NATed by the appliance,
 * and a reply from another address matches no conntrack entry, so it is never translated back:
 * no PC behind the NAT could resolve (issue 20). Real resolvers answer from the queried address.
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

const addrs = process.argv.slice(2);
if (!addrs.length) throw new Error('usage: target-server.ts ADDR...');

function answer(dns: ReturnType<typeof createSocket>, q: Buffer, rinfo: { port: number; address: string }): void {
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
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1]);
  dns.send(Buffer.concat([header, question, rr]), rinfo.port, rinfo.address);
}

let ready = 0;
const up = () => {
  if (++ready === 1 + addrs.length) process.stdout.write('ready\n');
};
http.listen(80, '0.0.0.0', up);
for (const a of addrs) {
  const dns = createSocket('udp4');
  dns.on('message', (q, rinfo) => answer(dns, q, rinfo));
  dns.bind(53, a, up);
}
process.on('SIGTERM', () => process.exit(0));
