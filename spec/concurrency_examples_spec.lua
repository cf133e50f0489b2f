local h = require "helpers"

local function run_example(name, args)
  return h.fdn_lua(h.quote(h.root .. "/examples/" .. name) .. (args and (" " .. args) or ""))
end

describe("concurrency example job scripts", function()
  it("semaphore.lua caps concurrency in FIFO order and times out a waiter #fifo", function()
    local code, out, err = run_example("semaphore.lua", "2")
    assert.equal(0, code, err)
    assert.equal("downloaded: file-1, file-2, file-3, file-4, file-5, file-6\n"
      .. "started in order: 1 2 3 4 5 6\n"
      .. "at most 2 at once (of 2 permits)\n"
      .. "with all permits taken: timed out\n"
      .. "free again: 2\n", out)
  end)

  it("queue.lua hands every job over, bounded, and refuses puts after close", function()
    local code, out, err = run_example("queue.lua", "10")
    assert.equal(0, code, err)
    assert.equal("handled 10 jobs: 1 2 3 4 5 6 7 8 9 10\n"
      .. "never more than 3 queued\n"
      .. "put after close: Closed\n", out)
  end)

  it("event.lua releases every waiter at once #fifo", function()
    local code, out, err = run_example("event.lua", "3")
    assert.equal(0, code, err)
    assert.equal("3 waiting, 0 woke so far\n"
      .. "woke in order: 1 2 3\n"
      .. "after clear, wait(0.01): timed out\n", out)
  end)

  it("task_manager.lua gathers in order, fails fast and collects errors #fifo", function()
    local code, out, err = run_example("task_manager.lua")
    assert.equal(0, code, err)
    assert.equal("fetched: page 1, page 2, page 3, page 4, page 5\n"
      .. "scope raised: server returned 503\n"
      .. "sibling cancelled: true\n"
      .. "collected: item 2 is broken; item 4 is broken\n", out)
  end)

  it("concurrent_executor.lua maps in order, reports progress and streams", function()
    local code, out, err = run_example("concurrent_executor.lua", "6")
    assert.equal(0, code, err)
    assert.equal("results: 100 200 300 400 500 600\n"
      .. "progress: 1/6 2/6 3/6 4/6 5/6 6/6\n"
      .. "streamed 100000 items, sum 5000050000\n"
      .. "with return_errors: 1, bad input 2, 3\n", out)
  end)

  it("task_pool.lua keeps order, applies backpressure and survives a failing job", function()
    local code, out, err = run_example("task_pool.lua", "8")
    assert.equal(0, code, err)
    assert.equal("results: thumb-1, thumb-2, image 3 is corrupt, thumb-4, thumb-5, "
      .. "thumb-6, thumb-7, thumb-8\n"
      .. "submits that waited for room: some\n"
      .. "submit after close: refused\n", out)
  end)
end)
