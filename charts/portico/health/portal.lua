-- Argo CD health check for portico.dev/Portal (Lua 5.1, Argo CD's sandbox).
-- Keyed on the Ready condition and observedGeneration: a status written for an
-- older spec says nothing about the current one. Empty strings count as absent.
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
-- A paused portal may keep an older observedGeneration: Portico changes nothing.
local paused = obj.spec ~= nil and obj.spec.paused == true
if obj.status.phase == "Paused" and (paused or observed >= generation) then
  hs.status = "Suspended"
  hs.message = "spec.paused is true: Portico changes nothing"
  return hs
end
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
  hs.message = text(obj.status.url) or message or reason or ""
elseif obj.status.phase == "Failed" or obj.status.phase == "Expired" then
  hs.status = "Degraded"
  hs.message = summary(obj.status.phase)
else
  -- Not ready yet but nothing for a person to fix (e.g. waiting for DNS).
  hs.message = summary("NotReady")
end
return hs
