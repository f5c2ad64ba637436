// timers (timer churn): N setTimeout timers (delays 1..1000 s, Park-Miller LCG
// seed 42: delay = 1 + x mod 1000 s), then clearTimeout of every handle in
// creation order, then one loop turn (setImmediate). None may fire.
'use strict';
const fs = require('fs');
const N = Number(process.argv[2] || 1000000);
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
let fired = 0;
const cb = () => { fired++; };

async function main() {
  let x = 42;
  const delays = new Array(N);
  for (let i = 0; i < N; i++) { x = (x * 16807) % 2147483647; delays[i] = 1 + (x % 1000); }
  const base = rssKb();
  const t0 = process.hrtime.bigint();
  const handles = new Array(N);
  for (let i = 0; i < N; i++) handles[i] = setTimeout(cb, delays[i] * 1000);
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) clearTimeout(handles[i]);
  const t2 = process.hrtime.bigint();
  await new Promise((r) => setImmediate(r));
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (fired !== 0) throw new Error('cancelled timers fired: ' + fired);
  const peak = process.resourceUsage().maxRSS;
  console.log(`RESULT workload=timers peer=node n=${N} seconds=${dt.toFixed(6)} rate=${(N / dt).toFixed(0)} rss_kb=${peak} ` +
    `base_kb=${base} bytes_per_timer=${((peak - base) * 1024 / N).toFixed(0)} ` +
    `create_s=${(Number(t1 - t0) / 1e9).toFixed(6)} cancel_s=${(Number(t2 - t1) / 1e9).toFixed(6)}`);
}
main();
