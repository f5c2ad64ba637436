// TLS echo server: node tls, 'data' handler writes the chunk back (the same
// handler as echo/node.js).
// usage: node node.js PORT CERTFILE KEYFILE
'use strict';
const fs = require('fs');
const tls = require('tls');
const [PORT, CERT, KEY] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
tls.createServer({ cert: fs.readFileSync(CERT), key: fs.readFileSync(KEY), noDelay: true }, (sock) => {
  sock.setNoDelay(true);
  sock.on('data', (d) => sock.write(d));
  sock.on('error', () => {});
}).listen({ port: PORT, host: '127.0.0.1', backlog: 1024 });
