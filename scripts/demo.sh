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
# The backing instance: the stand-in CRM (portico-standin) on loopback, where the operator
# asks it for each portal's token; plain http on loopback, so the instance is insecure.
standin_dir=/tmp/portico-demo-standin
if [ -f "$standin_dir/pid" ] && kill -0 "$(cat "$standin_dir/pid")" 2>/dev/null; then
  kill "$(cat "$standin_dir/pid")"; sleep 1
fi
mkdir -p "$standin_dir/credentials" && printf demo-token > "$standin_dir/credentials/token"
standin_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/portico-standin instance --host 127.0.0.1 --port "$standin_port" \
  --credentials-dir "$standin_dir/credentials" --solutions FieldService,ProjectService \
  > "$standin_dir/log" 2>&1 &
echo $! > "$standin_dir/pid"
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$standin_port/healthz" >/dev/null && break
  sleep 0.2
done
sed "s|url: .*|url: http://127.0.0.1:$standin_port\n  insecure: true|" examples/contoso-instance.yaml \
  | $kubectl apply -f -
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
  $portico dev down; kill \$(cat $standin_dir/pid)    # stop everything
MSG
