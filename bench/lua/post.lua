-- wrk script for the reads (Q1, Q2): POST the JSON body in $BODY_FILE with the
-- bearer token (see common.lua). Adapted from the peer harness's postgraphile/lua/post.lua (bench/README.md).
-- BENCH_LUA_DIR: this folder (LUA_DIR may name the peers' scripts in compare-ours.sh).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
require("common")

local f = assert(io.open(assert(setting("BODY_FILE"), "BODY_FILE not set"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
for k, v in pairs(headers) do wrk.headers[k] = v end

function init(args) init_counters() end
function response(status, headers, body) count_response(status, body) end
