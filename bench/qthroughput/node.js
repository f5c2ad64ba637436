// qthroughput: 4 producers and 4 consumers share one bounded promise queue
// (maxsize 100; node has none built in, so a small class as users write it:
// put awaits while full, get awaits while empty), N items in total (N/4 per
// producer). Once every producer has finished, main puts one null sentinel per
// consumer; each consumer counts and sums until its sentinel. Checks the total
// count (N) and sum (N(N-1)/2).
'use strict';
const P = 4, C = 4, MAXSIZE = 100;
const K = Math.floor(Number(process.argv[2] || 1000000) / P);
const N = P * K;

class Queue {
  constructor(maxsize) { this.maxsize = maxsize; this.items = []; this.getters = []; this.putters = []; }
  async put(v) {
    while (this.items.length >= this.maxsize) await new Promise((r) => this.putters.push(r));
    this.items.push(v);
    if (this.getters.length) this.getters.shift()();
  }
  async get() {
    while (!this.items.length) await new Promise((r) => this.getters.push(r));
    const v = this.items.shift();
    if (this.putters.length) this.putters.shift()();
    return v;
  }
}

async function producer(q, p) {
  for (let i = p * K; i < (p + 1) * K; i++) await q.put(i);
}

async function consumer(q) {
  let n = 0, s = 0;
  for (;;) {
    const v = await q.get();
    if (v === null) return [n, s];
    n++;
    s += v;
  }
}

async function main() {
  const q = new Queue(MAXSIZE);
  const t0 = process.hrtime.bigint();
  const consumers = [];
  for (let c = 0; c < C; c++) consumers.push(consumer(q));
  const producers = [];
  for (let p = 0; p < P; p++) producers.push(producer(q, p));
  await Promise.all(producers);
  for (let c = 0; c < C; c++) await q.put(null);
  const res = await Promise.all(consumers);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  let n = 0, s = 0;
  for (const [cn, cs] of res) { n += cn; s += cs; }
  if (n !== N || s !== N * (N - 1) / 2) throw new Error(`bad count/sum ${n} ${s}`);
  const rss = process.resourceUsage().maxRSS;
  console.log(`RESULT workload=qthroughput peer=node n=${N} seconds=${dt.toFixed(6)} rate=${(N / dt).toFixed(0)} rss_kb=${rss} ` +
    `per_consumer=${res.map((r) => r[0]).join('/')}`);
}
main();
