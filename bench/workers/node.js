// workers1 / workers2 server: node's cluster module with N workers sharing
// the port (the primary accepts and hands connections round-robin, node's
// default on Linux); each worker's GET / does the work of workers/lasync.lua
// (ITERS steps of the minimal standard LCG from a per-process counter, exact
// in doubles: x < 2^31, x * 16807 < 2^46) and answers the result as text.
// usage: node workers/node.js PORT N [ITERS]
'use strict';
const cluster = require('cluster');
const http = require('http');
const PORT = Number(process.argv[2] || 9000);
const N = Number(process.argv[3] || 1);
const ITERS = Number(process.argv[4] || 16000);

if (cluster.isPrimary) {
  for (let i = 0; i < N; i++) cluster.fork();
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  let count = 0;
  http.createServer((req, res) => {
    count++;
    let x = 1 + count % 1000;
    for (let i = 0; i < ITERS; i++) x = (x * 16807) % 2147483647;
    const body = x + '\n';
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  }).listen({ port: PORT, host: '127.0.0.1', backlog: 1024 });
}
