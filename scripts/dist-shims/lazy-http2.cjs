// Stands in for `node:http2` in the agent bundle (scripts/build-dist, --alias). fastify requires
// node:http2 when it loads but only uses it for `http2: true`, which the agent never sets; loading
// Node's http2 costs ~4.3 MB RSS (bare node with the unit's flags: 52.1 -> 56.4 MB). The first
// property read loads the real module, so anything that does use http2 still gets it.
'use strict';
let real;
module.exports = new Proxy(
  {},
  {
    get: (_, key) => (real ??= process.getBuiltinModule('node:http2'))[key],
    has: (_, key) => key in (real ??= process.getBuiltinModule('node:http2')),
  },
);
