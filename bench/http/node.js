// httphello / httpjson / httpidle server: node's http module, keep-alive
// (HTTP/1.1's default). GET / answers "Hello, world\n"; GET /json a small
// object encoded per request with JSON.stringify.
// usage: node node.js PORT
'use strict';
const http = require('http');
const PORT = Number(process.argv[2] || 9000);
const HELLO = 'Hello, world\n';
let count = 0;
http.createServer((req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': HELLO.length });
    res.end(HELLO);
  } else if (req.url === '/json') {
    const body = JSON.stringify({ message: 'Hello, world', n: ++count });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
  }
}).listen({ port: PORT, host: '127.0.0.1', backlog: 1024 });
