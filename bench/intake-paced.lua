-- intake.lua's requests, paced: each of wrk's connections waits 100 ms before its next request,
-- so 32 connections offer about 320 webhooks a second whatever the answers' speed. Latency then
-- shows the service's own time, not a queue the load made (a closed loop at full speed measures
-- mostly its own queue). 320/s is far above what Alertmanager sends: a few deliveries a second.
dofile("bench/intake.lua")

function delay()
  return 100
end
