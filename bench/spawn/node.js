// spawn: N tasks (async functions), each yields to the event loop once via
// setImmediate (the loop-level analogue of asyncio.sleep(0)), returns its index;
// Promise.all; check the sum.
'use strict';
const N = Number(process.argv[2] || 200000);
const yieldLoop = () => new Promise((r) => setImmediate(r));

async function work(i) {
  await yieldLoop();
  return i;
}

async function main() {
  const t0 = process.hrtime.bigint();
  const tasks = new Array(N);
  for (let i = 0; i < N; i++) tasks[i] = work(i);
  const res = await Promise.all(tasks);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  let s = 0;
  for (const v of res) s += v;
  if (s !== N * (N - 1) / 2) throw new Error('bad sum ' + s);
  const rss = process.resourceUsage().maxRSS; // KiB
  console.log(`RESULT workload=spawn peer=node n=${N} seconds=${dt.toFixed(6)} rate=${(N / dt).toFixed(0)} rss_kb=${rss}`);
}
main();
