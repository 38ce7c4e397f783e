-- wrk script for POST /v1/alertmanager: capture 01's exact bytes with a fingerprint unique per
-- request (thread id + counter), so every request is a new alert and dedupe never short-circuits.
-- The request is built once around the fingerprint, so each one costs wrk a string.format and a
-- concatenation: on a 2-core machine the load generator's own CPU is taken from the server.
-- Non-2xx answers are counted by wrk itself (summary.errors.status), so no response() hook.
local threads = {}
local next_id = 0
local FINGERPRINT = "79c58121da909ef6"

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local template = file:read("*a")
  file:close()
  local at = assert(string.find(template, FINGERPRINT, 1, true), "the capture has no fingerprint")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  -- The replacement has the fingerprint's length, so Content-Length stays right.
  local whole = wrk.format(nil, nil, nil, template)
  local body_at = #whole - #template
  before = string.sub(whole, 1, body_at + at - 1)
  after = string.sub(whole, body_at + at + #FINGERPRINT)
  counter = 0
end

function request()
  counter = counter + 1
  return before .. string.format("%02x%014x", id, counter) .. after
end

-- The RESULT line, shared with summary.lua (wrk runs from the repository root).
dofile("bench/summary.lua")
