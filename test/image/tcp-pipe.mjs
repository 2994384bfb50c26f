// One guest connection of a qemu guestfwd: stdin/stdout <-> a TCP port on the host's loopback.
// qemu spawns this per connection (guestfwd=...-cmd:...); a tcp: chardev there would be a single
// connection opened at VM start, dead after the first client (so a reconnecting MQTT client hangs).
import { connect } from 'node:net';
const s = connect(Number(process.argv[3]), process.argv[2]);
process.stdin.pipe(s).pipe(process.stdout);
s.on('error', () => process.exit(1));
s.on('close', () => process.exit(0));
process.stdin.on('end', () => s.end());
