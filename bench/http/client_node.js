// httpclient / httpsclient client: node's http (or https) request through
// one keep-alive Agent (maxSockets CONC) shared by CONC loops, each sending
// the next GET when the last response's body has ended, until N requests
// are done, after WARMUP requests that are not counted (they open the
// connections: the TLS handshakes are CONC, not N). https verifies the
// server against CAFILE (the `ca` option). A request counts as an error
// unless it answers 200 with "Hello, world\n". Prints one line run.sh turns
// into a RESULT: requests, seconds, client CPU seconds, max RSS, errors,
// p50/p99 latency of one request.
// usage: node client_node.js URL N CONC WARMUP [CAFILE]
'use strict';
const fs = require('fs');
const [URL_, N, CONC, WARMUP, CAFILE] = [process.argv[2], Number(process.argv[3]),
  Number(process.argv[4]), Number(process.argv[5]), process.argv[6]];
const url = new URL(URL_);
const mod = url.protocol === 'https:' ? require('https') : require('http');
const agent = new mod.Agent({ keepAlive: true, maxSockets: CONC,
  ...(CAFILE ? { ca: fs.readFileSync(CAFILE) } : {}) });
const BODY = 'Hello, world\n';

function get() {
  return new Promise((resolve) => {
    const req = mod.request(url, { agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve(res.statusCode === 200 && Buffer.concat(parts).toString() === BODY));
      res.on('error', () => resolve(false));
    });
    req.on('error', (e) => { if (!get.said) { get.said = true; console.error('# first error:', e.message); } resolve(false); });
    req.end();
  });
}

async function batch(n, lat) {
  let left = n, errors = 0;
  const worker = async () => {
    while (left > 0) {
      left--;
      const t = process.hrtime.bigint();
      if (!(await get())) errors++;
      lat.push(Number(process.hrtime.bigint() - t) / 1e3);
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
  return errors;
}

(async () => {
  await batch(WARMUP, []);
  const lat = [];
  const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  const errors = await batch(N, lat);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9, c = process.cpuUsage(c0);
  lat.sort((a, b) => a - b);
  const pick = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
  console.log(`requests=${N} seconds=${secs.toFixed(4)} cpu_s=${((c.user + c.system) / 1e6).toFixed(3)} ` +
    `maxrss_kb=${process.resourceUsage().maxRSS} errors=${errors} ` +
    `p50_us=${pick(0.5).toFixed(0)} p99_us=${pick(0.99).toFixed(0)}`);
  agent.destroy();
})();
