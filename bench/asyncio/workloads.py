"""The workloads for CPython asyncio (default loop or uvloop).

    python3 bench/asyncio/workloads.py <workload> [n] [--loop uvloop] [--variant V]

Prints one JSON line that the harness checks. W4.raise has two variants:
"tenacity" (the library a Python user reaches for) and "loop" (a retry loop
written by hand); W4.nil returns (None, err) tuples from a hand loop.
"""

import asyncio
import json
import sys
import time

now = time.perf_counter


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def settle():
    import gc
    gc.collect()


def durations(n):
    d, x = [], 42
    for _ in range(n):
        x = (x * 16807) % 2147483647
        d.append(1 + x % 10)
    return d


def summary(results, n):
    count = sum(1 for v in results if v is not None)
    total = sum(v for v in results if v is not None)
    ordered = len(results) == n and all(v == i + 1 for i, v in enumerate(results))
    return count, total, ordered


async def w0(n, _variant):
    count = 0
    sleep = asyncio.sleep
    t0 = now()
    for _ in range(n):
        count += 1
        await sleep(0)
    return {"elapsed": now() - t0, "count": count}


async def w1(n, _variant):
    async def work(i):
        await asyncio.sleep(0)
        return i

    t0 = now()
    tasks = [asyncio.create_task(work(i)) for i in range(1, n + 1)]
    results = await asyncio.gather(*tasks)
    elapsed = now() - t0
    count, total, ordered = summary(results, n)
    return {"elapsed": elapsed, "count": count, "sum": total, "ordered": ordered}


async def w2(n, _variant):
    limit = 64
    sem = asyncio.Semaphore(limit)
    state = {"in_flight": 0, "max": 0}

    async def work(i):
        async with sem:
            state["in_flight"] += 1
            if state["in_flight"] > state["max"]:
                state["max"] = state["in_flight"]
            await asyncio.sleep(0)
            state["in_flight"] -= 1
        return i

    t0 = now()
    tasks = [asyncio.create_task(work(i)) for i in range(1, n + 1)]
    results = await asyncio.gather(*tasks)
    elapsed = now() - t0
    count, total, ordered = summary(results, n)
    return {"elapsed": elapsed, "count": count, "sum": total, "ordered": ordered,
            "limit": limit, "max_in_flight": state["max"]}


async def w3(n, _variant):
    d = durations(n)
    state = {"started": 0, "early": 0}

    async def work(i):
        state["started"] += 1
        s = d[i] / 1000
        t = now()
        await asyncio.sleep(s)
        if now() - t < s - 0.001:
            state["early"] += 1
        return d[i]

    settle()
    rss0 = rss()
    t0 = now()
    tasks = [asyncio.create_task(work(i)) for i in range(n)]
    while state["started"] < n:
        await asyncio.sleep(0)
    rss_growth = rss() - rss0
    results = await asyncio.gather(*tasks)
    elapsed = now() - t0
    return {"elapsed": elapsed, "count": len(results), "sum": sum(results),
            "early": state["early"], "rss_growth": rss_growth}


class Flaky(Exception):
    pass


def retry_loop(max_attempts, fn):
    async def call(*args):
        err = None
        for _ in range(max_attempts):
            try:
                return await fn(*args)
            except Exception as e:  # noqa: BLE001 - retry on anything, like the peers
                err = e
        raise err
    return call


def retry_tuple(max_attempts, fn):
    async def call(*args):
        res = err = None
        for _ in range(max_attempts):
            res, err = await fn(*args)
            if res is not None:
                return res, None
        return None, err
    return call


async def w4(n, form, variant):
    state = {"attempts": 0}

    async def flaky_raise(i):
        state["attempts"] += 1
        if state["attempts"] % 3:
            raise Flaky("flaky")
        return i

    async def flaky_tuple(i):
        state["attempts"] += 1
        if state["attempts"] % 3:
            return None, "flaky"
        return i, None

    if form == "raise" and variant == "tenacity":
        import tenacity
        call = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(),
                              reraise=True)(flaky_raise)
    elif form == "raise":
        call = retry_loop(3, flaky_raise)
    else:
        call = retry_tuple(3, flaky_tuple)

    total = count = 0
    t0 = now()
    for i in range(1, n + 1):
        if form == "raise":
            v = await call(i)
        else:
            v, _err = await call(i)
        if v is not None:
            count += 1
            total += v
    return {"elapsed": now() - t0, "count": count, "sum": total, "attempts": state["attempts"]}


async def w4_raise(n, variant):
    return await w4(n, "raise", variant)


async def w4_nil(n, variant):
    return await w4(n, "nil", variant)


class Batcher:
    """A hand-written batcher: a full batch, or one whose 5 ms timer fired,
    goes to a handler task through a queue."""

    def __init__(self, size, interval, handler):
        self.size, self.interval, self.handler = size, interval, handler
        self.buf = []
        self.timer = None
        self.loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self._work())

    async def _work(self):
        while True:
            batch = await self.queue.get()
            if batch is None:
                return
            self.handler(batch)

    def _hand_off(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.buf:
            self.queue.put_nowait(self.buf)
            self.buf = []

    def add(self, x):
        buf = self.buf
        buf.append(x)
        if len(buf) == 1:
            self.timer = self.loop.call_later(self.interval, self._hand_off)
        elif len(buf) == self.size:
            self._hand_off()

    async def close(self):
        self._hand_off()
        self.queue.put_nowait(None)
        await self.worker


async def w5(n, _variant):
    state = {"items": 0, "batches": 0, "broken": 0, "last": 0}

    def handler(batch):
        size, last = len(batch), state["last"]
        if batch[0] != last + 1 or batch[-1] != last + size:
            state["broken"] += 1
        state["last"] = batch[-1]
        state["items"] += size
        state["batches"] += 1

    t0 = now()
    b = Batcher(100, 0.005, handler)
    add = b.add
    for i in range(1, n + 1):
        add(i)
        if i % 1000 == 0:
            await asyncio.sleep(0)
    await b.close()
    return {"elapsed": now() - t0, "count": state["items"], "batches": state["batches"],
            "broken": state["broken"], "last": state["last"]}


async def w6(n, _variant):
    event = asyncio.Event()
    state = {"parked": 0, "woke_unset": 0, "set": False}

    async def work(i):
        state["parked"] += 1
        await event.wait()
        if not state["set"]:
            state["woke_unset"] += 1
        return i

    settle()
    rss0 = rss()
    t0 = now()
    tasks = [asyncio.create_task(work(i)) for i in range(1, n + 1)]
    while state["parked"] < n:
        await asyncio.sleep(0)
    rss_growth = rss() - rss0
    parked_at_set = state["parked"]
    state["set"] = True
    event.set()
    results = await asyncio.gather(*tasks)
    elapsed = now() - t0
    count, total, ordered = summary(results, n)
    return {"elapsed": elapsed, "count": count, "sum": total, "ordered": ordered,
            "parked_at_set": parked_at_set, "woke_unset": state["woke_unset"],
            "rss_growth": rss_growth}


WORKLOADS = {"W0": (w0, 1000000), "W1": (w1, 200000), "W2": (w2, 200000), "W3": (w3, 100000),
             "W4.raise": (w4_raise, 100000), "W4.nil": (w4_nil, 100000),
             "W5": (w5, 1000000), "W6": (w6, 100000)}


def main(argv):
    args, loop, variant = [], "asyncio", None
    it = iter(argv)
    for a in it:
        if a == "--loop":
            loop = next(it)
        elif a == "--variant":
            variant = next(it)
        else:
            args.append(a)
    workload = args[0]
    fn, default_n = WORKLOADS[workload]
    n = int(args[1]) if len(args) > 1 else default_n
    if loop == "uvloop":
        import uvloop
        uvloop.install()
    result = asyncio.run(fn(n, variant))
    result.update(workload=workload, n=n)
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
