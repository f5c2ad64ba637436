// redisops: C "tasks" (default 50, async functions) each alternate
// SET k v / GET k over 1000 keys with 100-byte values on one ioredis
// connection (its automatic pipelining on, as lasync's). WARM operations
// first (not timed), then N timed. ioredis is installed by run.sh into
// bench/build/node/ (NODE_PATH). usage: ioredis.js SOCKET [N] [C] [WARM]
const Redis = require("ioredis");
const SOCK = process.argv[2];
const N = Number(process.argv[3] || 200000);
const C = Number(process.argv[4] || 50);
const WARM = Number(process.argv[5] || 20000);
const VALUE = "v".repeat(100);
const KEYS = [];
for (let i = 1; i <= 1000; i++) KEYS.push("key:" + i);

async function work(r, t, ops) {
  let k = (t * 20) % 1000;
  for (let i = 0; i < Math.floor(ops / 2); i++) {
    const key = KEYS[k];
    await r.set(key, VALUE);
    const v = await r.get(key);
    if (v.length !== 100) throw new Error("GET returned " + v.length);
    k = (k + 1) % 1000;
  }
}

async function round(r, ops) {
  const all = [];
  for (let t = 1; t <= C; t++) all.push(work(r, t, Math.floor(ops / C)));
  await Promise.all(all);
}

(async () => {
  const r = new Redis({ path: SOCK, enableAutoPipelining: true });
  await round(r, WARM);
  const t0 = process.hrtime.bigint();
  await round(r, N);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const rss = Math.round(process.resourceUsage().maxRSS);
  console.log(`RESULT workload=redisops peer=ioredis n=${N} ` +
    `seconds=${dt.toFixed(6)} rate=${Math.round(N / dt)} rss_kb=${rss} ` +
    `conc=${C}`);
  r.disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
