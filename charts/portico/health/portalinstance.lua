-- Argo CD health check for portico.dev/PortalInstance (Lua 5.1, Argo CD's sandbox).
-- An instance has no phase: Ready False always needs a person (missing
-- credentials Secret, unreachable endpoint), so it is Degraded. Empty strings
-- count as absent.
local function text(s)
  if s == "" then
    return nil
  end
  return s
end
local hs = {status = "Progressing", message = "Waiting for Portico to report status"}
if obj.status == nil then
  return hs
end
local generation = (obj.metadata or {}).generation or 0
local observed = obj.status.observedGeneration or 0
if observed < generation then
  hs.message = "Waiting for Portico to observe generation " .. generation
  return hs
end
local ready = nil
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" then
    ready = c
  end
end
if ready == nil or ready.status == "Unknown" or (ready.observedGeneration or generation) < generation then
  if ready ~= nil and text(ready.message) ~= nil then
    hs.message = ready.message
  end
  return hs
end
local reason = text(ready.reason)
local message = text(ready.message)
-- "Reason: message", or whichever of the two is there.
local function summary(fallback)
  if message == nil then
    return reason or fallback
  end
  return (reason or fallback) .. ": " .. message
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message or reason or ""
else
  hs.status = "Degraded"
  hs.message = summary("NotReady")
end
return hs
