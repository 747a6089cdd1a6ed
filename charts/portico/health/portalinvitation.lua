-- Argo CD health check for portico.dev/PortalInvitation (Lua 5.1, Argo CD's sandbox).
-- Sent, Redeemed and Revoked (on purpose) are Healthy; Expired is Degraded (the code
-- no longer works: delete the invitation or make a new one); Pending is Progressing
-- unless a condition names something only a person can fix.
local needs_a_person = {
  PortalNotFound = true, InstanceNotFound = true, CredentialsNotFound = true,
  DeliveryFailed = true, MailNotConfigured = true, DeliveryUncertain = true,
}
local hs = {status = "Progressing", message = "Waiting for Portico to report status"}
if obj.status == nil or obj.status.state == nil then
  return hs
end
local generation = (obj.metadata or {}).generation or 0
if (obj.status.observedGeneration or 0) < generation then
  hs.message = "Waiting for Portico to observe generation " .. generation
  return hs
end
local state = obj.status.state
hs.message = state
for _, c in ipairs(obj.status.conditions or {}) do
  if c.status ~= "True" and needs_a_person[c.reason or ""] then
    hs.status = "Degraded"
    hs.message = c.reason .. ": " .. (c.message or "")
    return hs
  end
end
if state == "Sent" or state == "Redeemed" or state == "Revoked" then
  hs.status = "Healthy"
elseif state == "Expired" then
  hs.status = "Degraded"
  hs.message = "Expired: the code no longer works; delete the invitation or create a new one"
end
return hs
