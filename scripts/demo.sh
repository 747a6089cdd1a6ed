#!/usr/bin/env bash
# The README's main job: plan the examples offline, then watch portals go
# Configuring -> Ready on a real local control plane run by `portico dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
portico=.venv/bin/portico

echo "== portico plan: every example, validated and rendered offline"
$portico plan examples/*.yaml -o table

echo "== portico dev up --with-operator (the first run builds the binaries)"
$portico dev status >/dev/null 2>&1 || $portico dev up --with-operator
export KUBECONFIG="$($portico dev kubeconfig)"
kubectl="$($portico dev build)/kubectl"

echo "== a PortalInstance, its credentials, and one portal per audience"
for ns in portico-system support partners internal; do
  $kubectl create namespace "$ns" --dry-run=client -o yaml | $kubectl apply -f - >/dev/null
done
$kubectl -n portico-system create secret generic contoso-crm-credentials \
  --from-literal=token=demo-token --dry-run=client -o yaml | $kubectl apply -f - >/dev/null
$kubectl apply -f examples/contoso-instance.yaml
$kubectl apply -f examples/customer-community.yaml -f examples/partner-partnerfieldservice.yaml \
  -f examples/employee-employeeselfservice.yaml -f examples/partner-customerselfservice.yaml

for _ in $(seq 1 30); do
  $kubectl get portals -A -o wide
  # Read the rows first: `grep -q` ending a pipe early would fail it under pipefail.
  rows=$($kubectl get portals -A --no-headers)
  if ! grep -qv ' Ready ' <<<"$rows"; then break; fi
  sleep 2
done
$kubectl wait --for=condition=Ready portal --all -A --timeout=120s
$portico status customer-community -n support

cat <<MSG

The control plane keeps running. Try:
  export KUBECONFIG=$KUBECONFIG
  $kubectl get portals -A -o wide
  $portico restart customer-community -n support     # a new provisioning attempt
  $portico dev down                                   # stop everything
MSG
