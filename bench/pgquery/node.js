// pgquery / pgfetch, the nodepg peer: node-postgres (npm `pg` 8, installed
// by run.sh into bench/build/node/ and found through NODE_PATH), a
// pg.Pool of 10 connections and 100 concurrent loops of `await
// pool.query(...)` (the pool lends each query a client), for SECONDS,
// after WARMUP seconds not counted (or until N queries are done, after
// N / 10 not counted: smoke runs). Not 10 pg.Client each given 10 queries
// at once: a Client queues them, but pg 8.23 deprecates that (a warning)
// and pg 9 removes it; the pool is what its documentation has users do,
// and measured the same within the noise. Queries go out unnamed (parsed
// each time: node-postgres prepares only a query given a `name`), as its
// users write them. The queries and checks are those of lasync.lua in this
// folder. Prints the RESULT line (client CPU from process.cpuUsage).
// usage: node node.js WORKLOAD SOCKET_DIR [SECONDS [WARMUP [N]]]
'use strict';
const pg = require('pg');

const [W, HOST] = [process.argv[2], process.argv[3]];
if (W !== 'pgquery' && W !== 'pgfetch') throw new Error(`bad workload ${W}`);
const T = process.argv[4] !== undefined ? Number(process.argv[4]) : 5;
const WARM_T = process.argv[5] !== undefined ? Number(process.argv[5]) : 1;
const N = process.argv[6] !== undefined ? Number(process.argv[6]) : null;
const CONNS = 10, TASKS = 100;
const FETCH = "SELECT i, 'row ' || i AS s, i * 1.5::float8 AS f " +
  'FROM generate_series($1::int, $1::int + 99) i';

async function oneQuery(pool, k) {
  const res = await pool.query('SELECT $1::int AS v', [k]);
  const v = res.rows[0].v;
  if (v !== k) throw new Error(`pgquery: sent ${k}, got ${v}`);
}

async function oneFetch(pool, k) {
  const rows = (await pool.query(FETCH, [k])).rows;
  let s = 0;
  for (const r of rows) s += r.i;
  const last = rows[99];
  if (rows.length !== 100 || s !== 100 * k + 4950 || last.i !== k + 99 ||
      last.s !== `row ${k + 99}` || last.f !== (k + 99) * 1.5) {
    throw new Error(`pgfetch: wrong rows for ${k} (${rows.length} rows)`);
  }
}

// queries by TASKS loops for `secs` seconds, or n of them
async function batch(pool, secs, n) {
  const one = W === 'pgquery' ? oneQuery : oneFetch;
  const deadline = performance.now() + secs * 1000;
  let left = n === null ? Infinity : n, done = 0;
  const loop = async (t) => {
    let k = t * 1000000;
    while (left > 0 && (n !== null || performance.now() < deadline)) {
      left--;
      k++;
      await one(pool, k);
      done++;
    }
  };
  await Promise.all(Array.from({ length: TASKS }, (_, t) => loop(t + 1)));
  return done;
}

(async () => {
  const pool = new pg.Pool({ host: HOST, user: 'postgres', database: 'postgres', max: CONNS });
  const warm = await batch(pool, WARM_T, N === null ? null : Math.floor(N / 10));
  const c0 = process.cpuUsage(), t0 = performance.now();
  const n = await batch(pool, T, N);
  const secs = (performance.now() - t0) / 1000, c = process.cpuUsage(c0);
  await pool.end();
  const cpu = (c.user + c.system) / 1e6;
  console.log(`RESULT workload=${W} peer=nodepg n=${n} seconds=${secs.toFixed(4)} ` +
    `rate=${(n / secs).toFixed(0)} rss_kb=${process.resourceUsage().maxRSS} ` +
    `cpu_s=${cpu.toFixed(3)} client_us_per_q=${(cpu * 1e6 / n).toFixed(1)} ` +
    `conns=${CONNS} tasks=${TASKS} warmup=${warm} pg=${require('pg/package.json').version}`);
})().catch((e) => { console.error(e); process.exit(1); });
