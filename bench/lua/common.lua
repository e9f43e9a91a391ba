-- Shared wrk helpers: per-thread counters and one machine-readable RESULT line.
-- Adapted from the peer harness's postgraphile/lua/common.lua (bench/README.md); adds the bearer token
-- every request of ours needs, and counts accepted changes. Settings come from
-- the environment, or else from the KEY=value lines of the file $BENCH_ENV_FILE
-- (how compare-ours.sh hands over what exists only once our server is up):
--   TOKEN          bearer token of bench-admin
--   REJECT_MARKER  text of a refused change (default LicenseLimitExceeded)
--   ACCEPT_MARKER  text of an accepted change (default UpdateLoginSuccess)
local threads = {}
local file_settings = {}
local env_file = os.getenv("BENCH_ENV_FILE")
if env_file and env_file ~= "" then
  for line in io.lines(env_file) do
    local k, v = string.match(line, "^([%w_]+)=(.*)$")
    if k then file_settings[k] = v end
  end
end

function setting(key, default)
  local v = os.getenv(key)
  if v == nil or v == "" then v = file_settings[key] end
  if v == nil or v == "" then v = default end
  return v
end

local reject_marker = setting("REJECT_MARKER", "LicenseLimitExceeded")
local accept_marker = setting("ACCEPT_MARKER", "UpdateLoginSuccess")

headers = { ["Content-Type"] = "application/json" }
local token = setting("TOKEN")
if token then headers["Authorization"] = "Bearer " .. token end

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function count_response(status, body)
  responses = responses + 1
  if status ~= 200 then return end
  if string.find(body, reject_marker, 1, true) then
    rejected = rejected + 1
  elseif string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
    if first_error == nil then first_error = string.sub(body, 1, 300) end
  elseif string.find(body, accept_marker, 1, true) then
    accepted = accepted + 1
  end
end

function init_counters()
  responses, gql_errors, rejected, accepted = 0, 0, 0, 0
  first_error = nil
end

function done(summary, latency, requests)
  local gql, rej, acc, first = 0, 0, 0, nil
  for _, t in ipairs(threads) do
    gql = gql + t:get("gql_errors")
    rej = rej + t:get("rejected")
    acc = acc + t:get("accepted")
    first = first or t:get("first_error")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "sock_errors=%d non2xx=%d gql_errors=%d rejected=%d accepted=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect + e.read + e.write + e.timeout, e.status, gql, rej, acc))
  if first then io.write("FIRST_ERROR " .. first .. "\n") end
end
