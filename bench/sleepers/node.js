// sleepers: N async tasks each await a setTimeout of a pseudo-random 0..1000 ms
// (Park-Miller LCG, seed 42, same as every peer); Promise.all; wall + RSS.
'use strict';
const fs = require('fs');
const N = Number(process.argv[2] || 100000);
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function sleeper(ms) { await sleep(ms); }

async function main() {
  let x = 42, maxd = 0;
  const delays = new Array(N);
  for (let i = 0; i < N; i++) {
    x = (x * 16807) % 2147483647;
    delays[i] = x % 1001;
    if (delays[i] > maxd) maxd = delays[i];
  }
  const base = rssKb();
  const t0 = process.hrtime.bigint();
  const tasks = new Array(N);
  for (let i = 0; i < N; i++) tasks[i] = sleeper(delays[i]);
  await Promise.all(tasks);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const peak = process.resourceUsage().maxRSS;
  console.log(`RESULT workload=sleepers peer=node n=${N} seconds=${dt.toFixed(6)} rate=${(N / dt).toFixed(0)} rss_kb=${peak} ` +
    `base_kb=${base} bytes_per_task=${((peak - base) * 1024 / N).toFixed(0)} max_delay_ms=${maxd}`);
}
main();
