-- wrk script for POST /v1/alertmanager: capture 01's exact bytes with a fingerprint unique per
-- request (thread id + counter), so every request is a new alert and dedupe never short-circuits.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  template = file:read("*a")
  file:close()
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end

function request()
  counter = counter + 1
  local fingerprint = string.format("%02x%014x", id, counter)
  local body = string.gsub(template, "79c58121da909ef6", fingerprint)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non_200 = (non_200 or 0) + 1
  end
end

-- The RESULT line, shared with summary.lua (wrk runs from the repository root).
dofile("bench/summary.lua")
