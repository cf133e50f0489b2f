local h = require "helpers"

describe("cmake --install", function()
  local prefix

  setup(function()
    prefix = os.tmpname()
    os.remove(prefix)
    local code, out, err = h.sh("cmake --install " .. h.quote(h.build) .. " --prefix " .. h.quote(prefix))
    assert(code == 0, out .. err)
  end)

  teardown(function()
    if prefix then h.sh("rm -rf " .. h.quote(prefix)) end
  end)

  it("lays out the library, the C module, the interpreter, headers and fdn.pc", function()
    for _, path in ipairs {
      "share/lua/5.1/fdn/init.lua", "share/lua/5.1/fdn/errors.lua",
      "lib/lua/5.1/fdn/core.so", "bin/fdn-lua", "include/fdn/fdn.h",
      "include/fdn/engine.h", "include/fdn/fdn_lua.h", "lib/libfdn.a",
      "lib/libfdn.so", "lib/pkgconfig/fdn.pc",
    } do
      local code = h.sh("test -e " .. h.quote(prefix .. "/" .. path))
      assert.equal(0, code, path .. " is missing")
    end
  end)

  it("lets stock luajit require fdn with nothing but LUA_PATH and LUA_CPATH", function()
    local env = string.format("cd / && LUA_PATH=%s LUA_CPATH=%s luajit -e %s",
      h.quote(prefix .. "/share/lua/5.1/?.lua;" .. prefix .. "/share/lua/5.1/?/init.lua;;"),
      h.quote(prefix .. "/lib/lua/5.1/?.so;;"),
      h.quote("local fdn = require 'fdn'; print(fdn.run(function() fdn.sleep(0.001) return 'ran' end))"))
    local code, out, err = h.sh(env)
    assert.equal(0, code, err)
    assert.equal("ran\n", out)
  end)

  it("runs the installed fdn-lua from any folder without LUA_PATH", function()
    local code, out = h.sh("cd / && env -u LUA_PATH -u LUA_CPATH " .. h.quote(prefix .. "/bin/fdn-lua")
      .. " -e " .. h.quote("fdn.sleep(0) print('installed ok')"))
    assert.equal(0, code)
    assert.equal("installed ok\n", out)
  end)

  it("builds a host program with pkg-config fdn", function()
    local exe = prefix .. "/embed_host"
    local code, out, err = h.sh(string.format(
      "PKG_CONFIG_PATH=%s cc -o %s %s $(PKG_CONFIG_PATH=%s pkg-config --cflags --libs fdn) -Wl,-E -Wl,-rpath,%s",
      h.quote(prefix .. "/lib/pkgconfig"), h.quote(exe), h.quote(h.root .. "/examples/embed_host.c"),
      h.quote(prefix .. "/lib/pkgconfig"), h.quote(prefix .. "/lib")))
    assert.equal(0, code, out .. err)
    code, out = h.sh(h.quote(exe))
    assert.equal(0, code)
    assert.matches("host: result fetched users", out)
  end)
end)
