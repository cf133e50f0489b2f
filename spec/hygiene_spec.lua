-- The suite's hygiene checks bite: a spec or C test that leaks fails.
local helpers = require "helpers"

local function busted_fixture()
  return helpers.sh("cd " .. helpers.quote(helpers.root) .. " && busted --lua=luajit -o TAP "
    .. "--helper=spec/hygiene_helper.lua -p hygiene_leaks spec/fixtures")
end

describe("hygiene checks", function()
  describe("for busted specs (spec/hygiene_helper.lua)", function()
    local code, out
    setup(function()
      code, out = busted_fixture()
    end)

    it("fails the run", function()
      assert.is_not.equal(0, code)
      assert.matches("\n1%.%.10\n", out)
    end)

    it("passes clean specs", function()
      for _, name in ipairs { "runs an engine to the end", "after the registry leak is undone",
        "after the handle is let go", "after the engine is closed" } do
        assert.matches("%f[^\n%z]ok %d+ %- hygiene fixture clean: " .. name:gsub("%p", "%%%0") .. "\n", out)
      end
    end)

    it("names the spec and what it left", function()
      assert.matches('spec "leaks a registry reference" left: 1 registry reference%(s%) not released', out)
      assert.matches('spec "keeps a failed task\'s handle alive" left: 1 task slot%(s%) still held', out)
      local engine_leak = out:match('spec "leaves an engine open with a live task" left: ([^\n]*)')
      assert.is_truthy(engine_leak, out)
      for _, what in ipairs { "1 engine(s) still open", "1 task(s) still live", "1 task slot(s) still held",
        "an engine is still bound" } do
        assert.is_truthy(engine_leak:find(what, 1, true), what .. " missing from: " .. engine_leak)
      end
      local _, failures = out:gsub("\nnot ok %d+ %- suite after_each", "")
      assert.equal(3, failures)
    end)
  end)

  describe("for C tests (spec/core/runner.c)", function()
    local cases = {
      hygiene_selftest_engine_left_open = "1 engine%(s%) not closed",
      hygiene_selftest_live_task_at_close = "1 engine%(s%) not closed",
      hygiene_selftest_handle_left_open = "1 owned loop%(s%) closed only by force",
    }
    for name, message in pairs(cases) do
      it("fails " .. name, function()
        local code, _, err = helpers.sh(helpers.quote(helpers.build .. "/fdn-core-tests") .. " " .. name)
        assert.is_not.equal(0, code)
        assert.matches(name .. ": hygiene: " .. message, err)
      end)
    end

    it("passes a clean test", function()
      local code, _, err = helpers.sh(helpers.quote(helpers.build .. "/fdn-core-tests")
        .. " virtual_sleepers_wake_in_deadline_order")
      assert.equal(0, code, err)
    end)
  end)
end)
