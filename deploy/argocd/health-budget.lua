-- Argo CD health of a ServiceLevelObjective (plimsoll.dev/v1alpha1).
-- Healthy: Ready=True for the current generation (its rules are in place).
-- Degraded: Ready=False (invalid spec, PrometheusRule kind missing, rules refused).
-- Progressing: the operator has not yet observed this generation, or not reported at all.
-- An exhausted error budget is the service's state, not the SLO's: it counts only with
-- budget_is_health = true (health-budget.lua).
local budget_is_health = true

local hs = {}
local generation = obj.metadata.generation
local status = obj.status or {}
local function condition(type)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == type then
      return c
    end
  end
  return nil
end

if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the plimsoll operator to observe generation " .. tostring(generation)
  return hs
end
local ready = condition("Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status ~= "True" then
  hs.status = "Degraded"
  hs.message = tostring(ready.reason) .. ": " .. tostring(ready.message)
  return hs
end
local exhausted = condition("BudgetExhausted")
if budget_is_health and exhausted ~= nil and exhausted.status == "True" then
  hs.status = "Degraded"
  hs.message = "Error budget exhausted: " .. tostring(exhausted.message)
  return hs
end
hs.status = "Healthy"
hs.message = ready.message or "Rules applied"
return hs
