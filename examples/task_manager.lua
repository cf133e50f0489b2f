-- A TaskManager is a scope for child tasks: at most max_concurrent run at
-- once, leaving the scope waits for all of them, and a failing child
-- cancels its siblings and makes the scope raise its error.
--   fdn-lua examples/task_manager.lua
local errors = fdn.errors

local function fetch(page)
  fdn.sleep(0.001 * (6 - page)) -- later pages answer sooner
  return "page " .. page
end

local pages = fdn.with(fdn.TaskManager.new { max_concurrent = 2 }, function(tm)
  local tasks = {}
  for page = 1, 5 do
    tasks[page] = tm:create_task(fetch, page) -- a Task, at once
  end
  return tm:gather(tasks)
end)
print("fetched: " .. table.concat(pages, ", "))

local cleaned_up = false
local ok, err = pcall(fdn.with, fdn.TaskManager.new { name = "crawler" }, function(tm)
  tm:create_task(function()
    local slept = pcall(fdn.sleep, 60) -- cancelled when the sibling fails
    cleaned_up = not slept
  end)
  tm:create_task(function()
    fdn.sleep(0.005)
    error(errors.Error.new("server returned 503"))
  end)
  fdn.sleep(60) -- the body is cancelled too
end)
print("scope raised: " .. (not ok and err.message or "?"))
print("sibling cancelled: " .. tostring(cleaned_up))

local tm = fdn.TaskManager.new { collect_errors = true }
fdn.with(tm, function()
  for i = 1, 4 do
    tm:create_task(function()
      if i % 2 == 0 then
        error("item " .. i .. " is broken", 0)
      end
    end)
  end
end)
print("collected: " .. table.concat(tm:errors(), "; "))
