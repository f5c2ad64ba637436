// qpingpong: two async functions pass a counter through two minimal promise
// queues (node has no built-in async queue), N round trips.
// (A copy of ../pingpong/node.js with the workload name changed.)
'use strict';
const N = Number(process.argv[2] || 500000);

class Queue {
  constructor() { this.items = []; this.getters = []; }
  put(v) {
    if (this.getters.length) this.getters.shift()(v);
    else this.items.push(v);
  }
  get() {
    if (this.items.length) return Promise.resolve(this.items.shift());
    return new Promise((r) => this.getters.push(r));
  }
}

async function ping(q1, q2) {
  let c = 0;
  for (let i = 0; i < N; i++) {
    q1.put(c);
    c = (await q2.get()) + 1;
  }
  return c;
}

async function pong(q1, q2) {
  for (let i = 0; i < N; i++) {
    const v = await q1.get();
    q2.put(v + 1);
  }
}

async function main() {
  const q1 = new Queue(), q2 = new Queue();
  const t0 = process.hrtime.bigint();
  const [c] = await Promise.all([ping(q1, q2), pong(q1, q2)]);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (c !== 2 * N) throw new Error('bad counter ' + c);
  const rss = process.resourceUsage().maxRSS;
  console.log(`RESULT workload=qpingpong peer=node n=${N} seconds=${dt.toFixed(6)} rate=${(N / dt).toFixed(0)} rss_kb=${rss}`);
}
main();
