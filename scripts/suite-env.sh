# Sourced by the reliability scripts: the environment scripts/test.sh gives
# busted, for the build folder in $1 (relative to the repository root).
# Also defines suite_files (the busted spec files) and tap_count.
suite_env() {
  local root=$PWD dir=$1
  export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;"
  export LUA_CPATH="$root/$dir/lua/?.so;;"
  export FDN_BUILD_DIR="$root/$dir" FDN_SOURCE_DIR="$root"
}

suite_files() {
  ls spec/*_spec.lua
}

# tap_count FILE: prints "ok notok planned" for a busted TAP output file;
# a run that died before its plan counts one failure more.
tap_count() {
  local ok notok plan
  ok=$(grep -c '^ok ' "$1")
  notok=$(grep -c '^not ok ' "$1")
  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$1" | tail -1)
  if [ -z "$plan" ]; then
    notok=$((notok + 1))
    plan=0
  fi
  echo "$ok $notok $plan"
}
