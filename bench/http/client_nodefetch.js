// httpclient / httpsclient client: Node's built-in fetch (undici, node 20)
// through its global dispatcher (keep-alive; one pool per origin, which
// grows to as many connections as requests in flight: CONC) shared by CONC
// loops, each awaiting `(await fetch(url)).text()` before the next, until N
// requests are done, after WARMUP requests that are not counted (they open
// the connections). https verifies the server against NODE_EXTRA_CA_CERTS,
// which run.sh sets to CAFILE (fetch has no ca option without importing
// undici, which node 20 does not expose). A request counts as an error
// unless it answers 200 with "Hello, world\n". Prints one line run.sh turns
// into a RESULT: requests, seconds, client CPU seconds, max RSS, errors,
// p50/p99 latency of one request.
// usage: NODE_EXTRA_CA_CERTS=CAFILE node client_nodefetch.js URL N CONC WARMUP
'use strict';
const [URL_, N, CONC, WARMUP] = [process.argv[2], Number(process.argv[3]),
  Number(process.argv[4]), Number(process.argv[5])];
const BODY = 'Hello, world\n';
let said = false;

async function batch(n, lat) {
  let left = n, errors = 0;
  const worker = async () => {
    while (left > 0) {
      left--;
      const t = process.hrtime.bigint();
      try {
        const r = await fetch(URL_);
        const body = await r.text();
        if (r.status !== 200 || body !== BODY) errors++;
      } catch (e) {
        errors++;
        if (!said) { said = true; console.error('# first error:', e.message, e.cause && e.cause.message); }
      }
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
})();
