'use strict';
// The workloads for Node (promises and async functions).
//   node bench/node/workloads.js <workload> [n] [--variant p-limit|hand]
// W2 uses p-limit when it can be required (Debian's node-p-limit through
// NODE_PATH=/usr/share/nodejs, or an npm install on NODE_PATH), else a
// hand-written limiter; the JSON line says which ran. --variant p-limit
// insists on p-limit, --variant hand on the hand-written one.

const fs = require('fs');

const now = () => Number(process.hrtime.bigint()) / 1e9;

function rss() {
  const statm = fs.readFileSync('/proc/self/statm', 'utf8').split(' ');
  return Number(statm[1]) * 4096;
}

function settle() {
  if (global.gc) global.gc();
}

function durations(n) {
  const d = new Array(n);
  let x = 42;
  for (let i = 0; i < n; i++) {
    x = (x * 16807) % 2147483647;
    d[i] = 1 + (x % 10);
  }
  return d;
}

function summary(results, n) {
  let count = 0;
  let sum = 0;
  let ordered = results.length === n;
  for (let i = 0; i < results.length; i++) {
    const v = results[i];
    if (v !== undefined && v !== null) {
      count++;
      sum += v;
    }
    if (v !== i + 1) ordered = false;
  }
  return { count, sum, ordered };
}

const yieldOnce = () => new Promise(setImmediate);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A hand-written limiter: at most `limit` functions running, FIFO waiters.
function handLimit(limit) {
  let active = 0;
  const waiting = [];
  let head = 0;
  const next = () => {
    active--;
    if (head < waiting.length) {
      const run = waiting[head];
      waiting[head++] = undefined;
      run();
    }
  };
  return (fn) => new Promise((resolve, reject) => {
    const run = () => {
      active++;
      fn().then(resolve, reject).finally(next);
    };
    if (active < limit) run();
    else waiting.push(run);
  });
}

function loadPLimit() {
  try {
    const mod = require('p-limit');
    return { limit: typeof mod === 'function' ? mod : mod.default, why: null };
  } catch (e) {
    return { limit: null, why: e.code || String(e) };
  }
}

const W = {};

W.W0 = async (n) => {
  let count = 0;
  const t0 = now();
  for (let i = 0; i < n; i++) {
    count++;
    await null;
  }
  return { elapsed: now() - t0, count };
};

W.W1 = async (n) => {
  const work = async (i) => {
    await null;
    return i;
  };
  const t0 = now();
  const tasks = new Array(n);
  for (let i = 1; i <= n; i++) tasks[i - 1] = work(i);
  const results = await Promise.all(tasks);
  const elapsed = now() - t0;
  return { elapsed, ...summary(results, n) };
};

W.W2 = async (n, variant) => {
  const limitN = 64;
  let make = handLimit;
  let used = 'hand';
  if (variant !== 'hand') {
    const p = loadPLimit();
    if (p.limit) {
      make = p.limit;
      used = 'p-limit';
    } else if (variant === 'p-limit') {
      throw new Error(`p-limit asked for but not loadable: ${p.why}`);
    }
  }
  const limit = make(limitN);
  let inFlight = 0;
  let max = 0;
  const work = async (i) => {
    inFlight++;
    if (inFlight > max) max = inFlight;
    await null;
    inFlight--;
    return i;
  };
  const t0 = now();
  const tasks = new Array(n);
  for (let i = 1; i <= n; i++) tasks[i - 1] = limit(() => work(i));
  const results = await Promise.all(tasks);
  const elapsed = now() - t0;
  return { elapsed, ...summary(results, n), limit: limitN, max_in_flight: max, limiter: used };
};

W.W3 = async (n) => {
  const d = durations(n);
  let started = 0;
  let early = 0;
  const work = async (i) => {
    started++;
    const t = now();
    await sleep(d[i]);
    if (now() - t < (d[i] - 1) / 1000) early++;
    return d[i];
  };
  settle();
  const rss0 = rss();
  const t0 = now();
  const tasks = new Array(n);
  for (let i = 0; i < n; i++) tasks[i] = work(i);
  while (started < n) await yieldOnce();
  const rssGrowth = rss() - rss0;
  const results = await Promise.all(tasks);
  const elapsed = now() - t0;
  let sum = 0;
  for (const v of results) sum += v;
  return { elapsed, count: results.length, sum, early, rss_growth: rssGrowth };
};

function retryThrown(maxAttempts, fn) {
  return async (...args) => {
    let err;
    for (let a = 0; a < maxAttempts; a++) {
      try {
        return await fn(...args);
      } catch (e) {
        err = e;
      }
    }
    throw err;
  };
}

function retryResult(maxAttempts, fn) {
  return async (...args) => {
    let r;
    for (let a = 0; a < maxAttempts; a++) {
      r = await fn(...args);
      if (r[0] !== null) return r;
    }
    return r;
  };
}

async function w4(n, form) {
  let attempts = 0;
  let call;
  if (form === 'raise') {
    call = retryThrown(3, async (i) => {
      attempts++;
      if (attempts % 3) throw new Error('flaky');
      return i;
    });
  } else {
    call = retryResult(3, async (i) => {
      attempts++;
      if (attempts % 3) return [null, 'flaky'];
      return [i, null];
    });
  }
  let sum = 0;
  let count = 0;
  const t0 = now();
  for (let i = 1; i <= n; i++) {
    const v = form === 'raise' ? await call(i) : (await call(i))[0];
    if (v !== null && v !== undefined) {
      count++;
      sum += v;
    }
  }
  return { elapsed: now() - t0, count, sum, attempts };
}
W['W4.raise'] = (n) => w4(n, 'raise');
W['W4.nil'] = (n) => w4(n, 'nil');

// A hand-written batcher: a full batch, or one whose 5 ms timer fired, goes
// to a handler task that waits for batches on a promise.
function makeBatcher(size, intervalMs, handler) {
  let buf = [];
  let timer = null;
  const pending = [];
  let head = 0;
  let closed = false;
  let wake = null;
  const handOff = () => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (buf.length === 0) return;
    pending.push(buf);
    buf = [];
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const worker = (async () => {
    for (;;) {
      if (head < pending.length) {
        const batch = pending[head];
        pending[head++] = undefined;
        handler(batch);
      } else if (closed) {
        return;
      } else {
        await new Promise((resolve) => { wake = resolve; });
      }
    }
  })();
  return {
    add(x) {
      buf.push(x);
      if (buf.length === 1) timer = setTimeout(handOff, intervalMs);
      else if (buf.length === size) handOff();
    },
    async close() {
      handOff();
      closed = true;
      if (wake) {
        const w = wake;
        wake = null;
        w();
      }
      await worker;
    },
  };
}

W.W5 = async (n) => {
  let items = 0;
  let batches = 0;
  let broken = 0;
  let last = 0;
  const t0 = now();
  const b = makeBatcher(100, 5, (batch) => {
    const size = batch.length;
    if (batch[0] !== last + 1 || batch[size - 1] !== last + size) broken++;
    last = batch[size - 1];
    items += size;
    batches++;
  });
  for (let i = 1; i <= n; i++) {
    b.add(i);
    if (i % 1000 === 0) await yieldOnce();
  }
  await b.close();
  return { elapsed: now() - t0, count: items, batches, broken, last };
};

W.W6 = async (n) => {
  let set;
  const event = new Promise((resolve) => { set = resolve; });
  let parked = 0;
  let wokeUnset = 0;
  let isSet = false;
  const work = async (i) => {
    parked++;
    await event;
    if (!isSet) wokeUnset++;
    return i;
  };
  settle();
  const rss0 = rss();
  const t0 = now();
  const tasks = new Array(n);
  for (let i = 1; i <= n; i++) tasks[i - 1] = work(i);
  while (parked < n) await yieldOnce();
  const rssGrowth = rss() - rss0;
  const parkedAtSet = parked;
  isSet = true;
  set();
  const results = await Promise.all(tasks);
  const elapsed = now() - t0;
  return {
    elapsed, ...summary(results, n), parked_at_set: parkedAtSet, woke_unset: wokeUnset,
    rss_growth: rssGrowth,
  };
};

const DEFAULTS = {
  W0: 1000000, W1: 200000, W2: 200000, W3: 100000, 'W4.raise': 100000, 'W4.nil': 100000,
  W5: 1000000, W6: 100000,
};

async function main(argv) {
  const args = [];
  let variant = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--variant') variant = argv[++i];
    else args.push(argv[i]);
  }
  const workload = args[0];
  if (!W[workload]) {
    process.stderr.write(`unknown workload: ${workload}\n`);
    process.exit(2);
  }
  const n = args[1] ? Number(args[1]) : DEFAULTS[workload];
  const result = await W[workload](n, variant);
  result.workload = workload;
  result.n = n;
  process.stdout.write(JSON.stringify(result) + '\n');
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`${e.stack}\n${e.message}\n`);
  process.exit(1);
});
