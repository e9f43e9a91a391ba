-- wrk script for M1: move a random live user to another profile with
-- changeLoginProfile. Half of the requests ask for a profile with every module
-- (CASE+DOCUMENT), so the pools fill up and the R4 guard is exercised; the
-- rest pick any of the profiles. Adapted from the peer harness's postgraphile/lua/m1.lua
-- (optional, see bench/README.md; same per-thread seeds, same mix); our ids are global ids.
--   USER_IDS       file with the global ids of the live users, one per line
--                  (written by `license-gateway generate --user-ids`)
--   PROFILE_IDS    global ids of all profiles, comma-separated
--   FULL_PROFILE_IDS  global ids of the profiles with every module, comma-separated
--   QUERY_FILE     the mutation (bench/queries/m1.graphql)
--   TOKEN, REJECT_MARKER, ACCEPT_MARKER: see common.lua
-- BENCH_LUA_DIR: this folder (LUA_DIR may name the peers' scripts in compare-ours.sh).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
require("common")

local function split(s)
  local out = {}
  for x in string.gmatch(assert(s, "missing id list"), "[^,%s]+") do table.insert(out, x) end
  assert(#out > 0, "empty id list")
  return out
end

local users = {}
local users_file = assert(setting("USER_IDS"), "USER_IDS not set")
for line in io.lines(users_file) do
  if line ~= "" then users[#users + 1] = line end
end
assert(#users > 0, "USER_IDS lists no user")
local profiles = split(setting("PROFILE_IDS"))
local full = split(setting("FULL_PROFILE_IDS"))

local qf = assert(io.open(assert(setting("QUERY_FILE"), "QUERY_FILE not set"), "rb"))
local query = qf:read("*a"):gsub("%s+", " ")   -- has no quotes or backslashes to escape
qf:close()
local fmt = string.format('{"query":"%s","variables":{"id":"%%s","profileId":"%%s"}}', query)

function init(args)
  init_counters()
  math.randomseed(4242 + tid)   -- deterministic per-thread request sequence
end

function request()
  local id = users[math.random(1, #users)]
  local profile
  if math.random() < 0.5 then profile = full[math.random(1, #full)] else profile = profiles[math.random(1, #profiles)] end
  return wrk.format("POST", nil, headers, string.format(fmt, id, profile))
end

function response(status, headers, body) count_response(status, body) end
