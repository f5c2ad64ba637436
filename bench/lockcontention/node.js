// lockcontention: 100 async functions share one promise-based mutex (node has
// none built in, so a small class as users write it: a FIFO of waiting
// resolvers, release hands the lock to the oldest); each does N/100 iterations
// of: acquire; counter++; every 10th iteration yield to the event loop
// (setImmediate) while holding the lock; release. N acquisitions in total.
// Checks the final counter (N).
'use strict';
const T = 100;
const K = Math.max(1, Math.floor(Number(process.argv[2] || 1000000) / T));
const N = T * K;
const yieldLoop = () => new Promise((r) => setImmediate(r));

class Mutex {
  constructor() { this.locked = false; this.waiters = []; }
  acquire() {
    if (!this.locked) { this.locked = true; return Promise.resolve(); }
    return new Promise((r) => this.waiters.push(r));
  }
  release() {
    if (this.waiters.length) this.waiters.shift()(); // stays locked: handed over
    else this.locked = false;
  }
}

let counter = 0;

async function worker(lock) {
  for (let i = 1; i <= K; i++) {
    await lock.acquire();
    counter++;
    if (i % 10 === 0) await yieldLoop();
    lock.release();
  }
}

async function main() {
  const lock = new Mutex();
  const t0 = process.hrtime.bigint();
  const ws = [];
  for (let t = 0; t < T; t++) ws.push(worker(lock));
  await Promise.all(ws);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (counter !== N || lock.locked) throw new Error('bad counter ' + counter);
  const rss = process.resourceUsage().maxRSS;
  console.log(`RESULT workload=lockcontention peer=node n=${N} seconds=${dt.toFixed(6)} rate=${(N / dt).toFixed(0)} rss_kb=${rss}`);
}
main();
