package worker

import "github.com/redis/go-redis/v9"

// All scripts build key names from the queue prefix "{queue}:" passed as
// ARGV[1]; every key shares that hash tag, so one queue lives in one Cluster
// slot and the scripts stay atomic there.

const luaPrelude = `
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function logev(id, ev, attempt, worker, kind, msg, peak)
  local k = P .. 'log:' .. id
  redis.call('RPUSH', k, cjson.encode({ev = ev, at = now, attempt = tonumber(attempt) or 0, worker = worker or '', kind = kind or '', error = msg or '', peak = tonumber(peak) or 0}))
  redis.call('LTRIM', k, -64, -1)
end
local function deadletter(id, kind, msg, worker)
  local jk = P .. 'job:' .. id
  redis.call('HSET', jk, 'status', 'dead', 'error_kind', kind, 'error', msg, 'token', '', 'finished_at', now, 'updated_at', now)
  redis.call('ZREM', P .. 'leases', id)
  redis.call('SREM', P .. 'running', id)
  redis.call('ZADD', P .. 'dead', now, id)
  redis.call('HINCRBY', P .. 'stats', 'dead', 1)
  logev(id, 'dead', redis.call('HGET', jk, 'attempts'), worker, kind, msg, 0)
end
`

// enqueue: ARGV prefix, id, workflow, payload, hint, max_attempts, class.
var enqueueScript = redis.NewScript(luaPrelude + `
local jk = P .. 'job:' .. ARGV[2]
if redis.call('EXISTS', jk) == 1 then return 0 end
redis.call('HSET', jk, 'id', ARGV[2], 'workflow', ARGV[3], 'payload', ARGV[4], 'hint', ARGV[5],
  'max_attempts', ARGV[6], 'class', ARGV[7], 'status', 'queued', 'attempts', 0, 'crashes', 0,
  'enqueued_at', now, 'updated_at', now)
redis.call('LPUSH', P .. 'pending', ARGV[2])
redis.call('ZADD', P .. 'runs', now, ARGV[2])
redis.call('HINCRBY', P .. 'stats', 'enqueued', 1)
logev(ARGV[2], 'enqueued', 0, '', '', '', 0)
return 1
`)

// claim: ARGV prefix, expected id (” for any), worker, lease ms, max crashes,
// default max attempts. Pops the oldest job; counts the attempt at pickup;
// dead-letters exhausted jobs instead of starting them.
var claimScript = redis.NewScript(luaPrelude + `
for i = 1, 50 do
  local id = redis.call('LINDEX', P .. 'pending', -1)
  if not id then return {'empty'} end
  if ARGV[2] ~= '' and (id ~= ARGV[2] or i > 1) then return {'raced'} end
  redis.call('RPOP', P .. 'pending')
  local jk = P .. 'job:' .. id
  local f = redis.call('HMGET', jk, 'attempts', 'crashes', 'max_attempts', 'status', 'payload', 'workflow', 'hint')
  if f[4] and f[4] ~= 'dead' and f[4] ~= 'running' and f[4] ~= 'succeeded' and f[4] ~= 'failed' then
    local attempts = tonumber(f[1]) + 1
    local crashes = tonumber(f[2])
    local maxA = tonumber(f[3]) or 0
    if maxA <= 0 then maxA = tonumber(ARGV[6]) end
    if crashes >= tonumber(ARGV[5]) then
      deadletter(id, 'killed', 'worker lost mid-job ' .. crashes .. ' times (SIGKILL or OOM kill); not started again', ARGV[3])
    elseif attempts > maxA then
      deadletter(id, 'exhausted', 'attempts exhausted (' .. maxA .. ')', ARGV[3])
    else
      local token = redis.call('INCR', P .. 'token')
      local until_ = now + tonumber(ARGV[4])
      redis.call('HSET', jk, 'status', 'running', 'attempts', attempts, 'token', token, 'worker', ARGV[3],
        'started_at', now, 'lease_until', until_, 'updated_at', now)
      redis.call('ZADD', P .. 'leases', until_, id)
      redis.call('SADD', P .. 'running', id)
      redis.call('HINCRBY', P .. 'stats', 'started', 1)
      logev(id, 'start', attempts, ARGV[3], '', '', 0)
      return {'ok', id, tostring(token), tostring(attempts), f[5], f[6], f[7] or '0', tostring(crashes)}
    end
  end
end
return {'raced'}
`)

// heartbeat: ARGV prefix, lease ms, then id, token pairs. Returns 1/0 per pair.
var heartbeatScript = redis.NewScript(luaPrelude + `
local out = {}
for i = 3, #ARGV, 2 do
  local id, tok = ARGV[i], ARGV[i + 1]
  local jk = P .. 'job:' .. id
  if redis.call('HGET', jk, 'token') == tok and redis.call('ZSCORE', P .. 'leases', id) then
    local until_ = now + tonumber(ARGV[2])
    redis.call('ZADD', P .. 'leases', 'XX', until_, id)
    redis.call('HSET', jk, 'lease_until', until_)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`)

// finish: ARGV prefix, id, token, outcome (succeeded|failed|retry|dead|release|
// suspended), peak, nodes json, error kind, error message, history size,
// worker, suspended node ids json, node stats json.
// Fenced: does nothing and returns 0 unless the caller still holds the lease.
var finishScript = redis.NewScript(luaPrelude + `
local id, tok, outcome = ARGV[2], ARGV[3], ARGV[4]
local jk = P .. 'job:' .. id
if redis.call('HGET', jk, 'token') ~= tok or redis.call('ZREM', P .. 'leases', id) == 0 then
  redis.call('HINCRBY', P .. 'stats', 'fenced', 1)
  return 0
end
redis.call('SREM', P .. 'running', id)
redis.call('HSET', jk, 'token', '', 'updated_at', now)
local peak = tonumber(ARGV[5]) or 0
local attempts = redis.call('HGET', jk, 'attempts')
if peak > 0 and outcome ~= 'release' and outcome ~= 'suspended' then
  local wf = redis.call('HGET', jk, 'workflow')
  redis.call('HSET', jk, 'peak', peak)
  redis.call('LPUSH', P .. 'peaks:' .. wf, peak)
  redis.call('LTRIM', P .. 'peaks:' .. wf, 0, tonumber(ARGV[9]) - 1)
end
if ARGV[6] ~= '' then redis.call('HSET', jk, 'nodes', ARGV[6]) end
if ARGV[12] ~= '' then redis.call('HSET', jk, 'node_stats', ARGV[12]) end
if peak > 0 and outcome == 'suspended' then redis.call('HSET', jk, 'peak', peak) end
if outcome == 'succeeded' then
  redis.call('HSET', jk, 'status', 'succeeded', 'finished_at', now, 'acked_by', ARGV[10])
  redis.call('HINCRBY', P .. 'stats', 'succeeded', 1)
elseif outcome == 'failed' then
  redis.call('HSET', jk, 'status', 'failed', 'finished_at', now, 'error_kind', ARGV[7], 'error', ARGV[8], 'acked_by', ARGV[10])
  redis.call('HINCRBY', P .. 'stats', 'failed', 1)
elseif outcome == 'retry' then
  redis.call('HSET', jk, 'status', 'retrying', 'error_kind', ARGV[7], 'error', ARGV[8])
  redis.call('LPUSH', P .. 'pending', id)
  redis.call('HINCRBY', P .. 'stats', 'retried', 1)
elseif outcome == 'dead' then
  deadletter(id, ARGV[7], ARGV[8], ARGV[10])
  return 1
elseif outcome == 'release' then
  attempts = redis.call('HINCRBY', jk, 'attempts', -1)
  redis.call('HSET', jk, 'status', 'queued')
  redis.call('RPUSH', P .. 'pending', id)
  redis.call('HINCRBY', P .. 'stats', 'released', 1)
elseif outcome == 'suspended' then
  -- Parked on purpose: not pending, not leased, not running; the attempt is
  -- refunded (a suspension is not a failure). Approve requeues it.
  attempts = redis.call('HINCRBY', jk, 'attempts', -1)
  -- A decision that arrived while the attempt ran (Approve saw it running)
  -- would otherwise wait forever: resume at once.
  local ok, at = pcall(cjson.decode, ARGV[11])
  if ok and type(at) == 'table' then
    for _, n in ipairs(at) do
      if redis.call('HEXISTS', P .. 'approval:' .. id, n) == 1 then
        redis.call('HSET', jk, 'status', 'queued', 'suspended', ARGV[11], 'suspend_msg', ARGV[8])
        redis.call('LPUSH', P .. 'pending', id)
        redis.call('HINCRBY', P .. 'stats', 'suspended', 1)
        logev(id, 'resume', attempts, ARGV[10], '', 'decided while running: ' .. ARGV[8], peak)
        return 1
      end
    end
  end
  redis.call('HSET', jk, 'status', 'suspended', 'suspended', ARGV[11], 'suspend_msg', ARGV[8], 'suspended_at', now)
  redis.call('ZADD', P .. 'suspended', now, id)
  redis.call('HINCRBY', P .. 'stats', 'suspended', 1)
  logev(id, outcome, attempts, ARGV[10], '', ARGV[8], peak)
  return 1
end
logev(id, outcome, attempts, ARGV[10], ARGV[7], ARGV[8], peak)
return 1
`)

// reap: ARGV prefix, max crashes, batch. Takes expired leases (ids with no
// lease at all when ARGV[4] lists them), counts a crash and puts the job at
// the back of the queue or in the dead-letter set. Returns {expired leases
// recovered, orphans recovered, of which dead-lettered}.
var reapScript = redis.NewScript(luaPrelude + `
local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local nexpired = #ids
local orphan = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', P .. 'job:' .. id, 'status') == 'running' and not redis.call('ZSCORE', P .. 'leases', id) then
    ids[#ids + 1] = id
    orphan[id] = true
  else
    redis.call('SREM', P .. 'running', id)
  end
end
local n, no, nd = 0, 0, 0
for _, id in ipairs(ids) do
  redis.call('ZREM', P .. 'leases', id)
  redis.call('SREM', P .. 'running', id)
  local jk = P .. 'job:' .. id
  if redis.call('EXISTS', jk) == 1 then
    if orphan[id] then no = no + 1 else n = n + 1 end
    local crashes = redis.call('HINCRBY', jk, 'crashes', 1)
    local who = redis.call('HGET', jk, 'worker') or ''
    redis.call('HINCRBY', P .. 'stats', 'crashes', 1)
    redis.call('HSET', jk, 'token', '', 'updated_at', now)
    local msg = 'worker ' .. who .. ' lost mid-job (SIGKILL or OOM kill): lease expired'
    if crashes >= tonumber(ARGV[2]) then
      deadletter(id, 'killed', msg .. '; crashed ' .. crashes .. ' times', 'reaper')
      nd = nd + 1
    else
      redis.call('HSET', jk, 'status', 'retrying', 'error_kind', 'killed', 'error', msg)
      redis.call('LPUSH', P .. 'pending', id)
      logev(id, 'crashed', redis.call('HGET', jk, 'attempts'), who, 'killed', msg, 0)
    end
  end
end
return {n, no, nd}
`)

// rejectPending: ARGV prefix, id, kind, message, worker. Dead-letters a job
// still waiting in the pending list (it exceeds this worker's memory).
var rejectPendingScript = redis.NewScript(luaPrelude + `
if redis.call('LREM', P .. 'pending', -1, ARGV[2]) == 0 then return 0 end
deadletter(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
`)

// retryDead: ARGV prefix, id.
var retryDeadScript = redis.NewScript(luaPrelude + `
if redis.call('ZREM', P .. 'dead', ARGV[2]) == 0 then return 0 end
local jk = P .. 'job:' .. ARGV[2]
redis.call('HSET', jk, 'status', 'queued', 'attempts', 0, 'crashes', 0, 'updated_at', now)
redis.call('LPUSH', P .. 'pending', ARGV[2])
redis.call('HINCRBY', P .. 'stats', 'dead_retried', 1)
logev(ARGV[2], 'retry_dead', 0, '', '', '', 0)
return 1
`)

// dropDead: ARGV prefix, id.
var dropDeadScript = redis.NewScript(luaPrelude + `
if redis.call('ZREM', P .. 'dead', ARGV[2]) == 0 then return 0 end
redis.call('DEL', P .. 'job:' .. ARGV[2], P .. 'log:' .. ARGV[2], P .. 'approval:' .. ARGV[2])
redis.call('ZREM', P .. 'runs', ARGV[2])
redis.call('HINCRBY', P .. 'stats', 'dead_dropped', 1)
return 1
`)

// approve: ARGV prefix, id, node, who. Stores the decision; a run suspended
// at that node goes to the back of the pending list with its attempts as they
// were. Returns {'missing'}, {'terminal', status}, {'notat', suspended json},
// {'stored', status} (not suspended yet: the node will see the decision) or
// {'requeued'}.
var approveScript = redis.NewScript(luaPrelude + `
local id, node = ARGV[2], ARGV[3]
local jk = P .. 'job:' .. id
local f = redis.call('HMGET', jk, 'status', 'suspended', 'attempts')
if not f[1] then return {'missing'} end
local st = f[1]
if st == 'succeeded' or st == 'failed' or st == 'dead' then return {'terminal', st} end
if st == 'suspended' then
  local ok, at = pcall(cjson.decode, f[2] or '[]')
  local found = false
  if ok and type(at) == 'table' then
    for _, n in ipairs(at) do if n == node then found = true end end
  end
  if not found then return {'notat', f[2] or '[]'} end
end
redis.call('HSET', P .. 'approval:' .. id, node, 'approved')
logev(id, 'approved', f[3], ARGV[4], '', 'node ' .. node, 0)
if st ~= 'suspended' then return {'stored', st} end
redis.call('ZREM', P .. 'suspended', id)
redis.call('HSET', jk, 'status', 'queued', 'updated_at', now)
redis.call('LPUSH', P .. 'pending', id)
redis.call('HINCRBY', P .. 'stats', 'approved', 1)
return {'requeued'}
`)

// reject: ARGV prefix, id, node, who, reason. Stores the decision; a run
// suspended at that node fails with kind rejected. Same replies as approve,
// with {'failed'} instead of {'requeued'}.
var rejectScript = redis.NewScript(luaPrelude + `
local id, node = ARGV[2], ARGV[3]
local jk = P .. 'job:' .. id
local f = redis.call('HMGET', jk, 'status', 'suspended', 'attempts')
if not f[1] then return {'missing'} end
local st = f[1]
if st == 'succeeded' or st == 'failed' or st == 'dead' then return {'terminal', st} end
if st == 'suspended' then
  local ok, at = pcall(cjson.decode, f[2] or '[]')
  local found = false
  if ok and type(at) == 'table' then
    for _, n in ipairs(at) do if n == node then found = true end end
  end
  if not found then return {'notat', f[2] or '[]'} end
end
local msg = 'node ' .. node .. ' rejected by ' .. ARGV[4]
if ARGV[5] ~= '' then msg = msg .. ': ' .. ARGV[5] end
redis.call('HSET', P .. 'approval:' .. id, node, 'rejected', 'reason:' .. node, ARGV[5])
logev(id, 'rejected', f[3], ARGV[4], 'rejected', msg, 0)
if st ~= 'suspended' then return {'stored', st} end
redis.call('ZREM', P .. 'suspended', id)
redis.call('HSET', jk, 'status', 'failed', 'error_kind', 'rejected', 'error', msg, 'finished_at', now, 'updated_at', now, 'acked_by', ARGV[4])
redis.call('HINCRBY', P .. 'stats', 'failed', 1)
redis.call('HINCRBY', P .. 'stats', 'rejected', 1)
return {'failed'}
`)
