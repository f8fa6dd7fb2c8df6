-- wrk script for `cargo bench --bench pool -- reads`: the dashboard query (the pool and one
-- subscriber with its last credits) as a POST to /graphql.
--
-- SUBSCRIBERS: a file with one identity per line; each request asks for the next one in turn,
-- as that many dashboards polling their own subscriber would.
-- UNIQUE=1: every request's body is also made different (an alias with a counter), so no two
-- requests can share an answer: the cost of a query the pool computes every time.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local who = {}
local file = os.getenv("SUBSCRIBERS")
if file then
  for line in io.lines(file) do
    if line ~= "" then who[#who + 1] = line end
  end
end
if #who == 0 then who[1] = "sub00000@" end
local unique = os.getenv("UNIQUE") == "1"
local n = 0

-- Each wrk thread runs its own copy of this script: `id` tells their bodies apart.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

-- Answers that carry GraphQL errors (a 200 all the same): counted, so a broken query shows.
failed = 0
response = function(status, headers, body)
  if string.find(body, '"errors"', 1, true) then failed = failed + 1 end
end

done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("failed") or 0) end
  io.write(string.format("GraphQL errors: %d\n", total))
end

request = function()
  n = n + 1
  local tag = unique and ("t" .. tostring(id) .. "n" .. n .. ": ") or ""
  local body = '{"query":"{ ' .. tag .. 'pool { chain tipHeight processedHeight subscriberCount stakingSupply feesEarned totalPaid pendingTotal payoutsPaused } subscriber(identity: \\"' .. who[(n % #who) + 1] .. '\\") { status eligibleBalance pendingBalance paidTotal credits(first: 10) { edges { node { amount work } } } } }"}'
  return wrk.format(nil, nil, nil, body)
end
