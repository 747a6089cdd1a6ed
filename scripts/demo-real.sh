#!/usr/bin/env bash
# `make demo-real`: the demo's example portals on a real node — real pods behind Traefik —
# plus one portal served over HTTPS on its custom domain with an uploaded .pfx.
set -euo pipefail
cd "$(dirname "$0")/.."
portico=.venv/bin/portico
python=.venv/bin/python
started=$(date +%s)
host=support.contoso.com
target=contoso-support.portals.example.com   # the operator's default base domain
dnsdir=/tmp/portico-demo-dns

echo "== DNS for $host: NSD on loopback with the CNAME the operator checks"
if [ -f "$dnsdir/nsd.pid" ] && kill -0 "$(cat "$dnsdir/nsd.pid")" 2>/dev/null; then
  kill "$(cat "$dnsdir/nsd.pid")"; sleep 1
fi
rm -rf "$dnsdir"
PORTICO_DNS_NAMESERVERS="$($python scripts/demo_domain.py dns "$dnsdir" contoso.com "support CNAME $target.")"
export PORTICO_DNS_NAMESERVERS

echo "== portico dev up --real-node --with-operator (first run: binaries and images are built)"
if $portico dev status >/dev/null 2>&1; then
  echo "a control plane is already running: stop it first (portico dev down)" >&2
  exit 1
fi
$portico dev up --real-node --with-operator
export KUBECONFIG="$($portico dev kubeconfig)"
kubectl="$($portico dev build)/kubectl"
# The stand-in instance has an image of its own (standin/Dockerfile), imported into the node.
standin=$($portico dev images --only standin --import -o json | $python -c \
  'import json,sys; print(next(i["ref"] for i in json.load(sys.stdin) if i["name"] == "standin"))')

echo "== the stand-in customer-insights hub on the host (HTTPS; the pods reach it through a relay)"
hubdir=/tmp/portico-demo-hub
if [ -f "$hubdir/pid" ] && kill -0 "$(cat "$hubdir/pid")" 2>/dev/null; then
  kill "$(cat "$hubdir/pid")"; sleep 1
fi
rm -rf "$hubdir"; mkdir -p "$hubdir"
nohup $python scripts/demo_hub.py serve "$hubdir" >"$hubdir/hub.log" 2>&1 &
echo $! >"$hubdir/pid"
for _ in $(seq 1 60); do [ -f "$hubdir/hub.json" ] && break; sleep 0.5; done
if [ ! -f "$hubdir/hub.json" ]; then
  cat "$hubdir/hub.log" >&2; echo "the stand-in hub did not start" >&2; exit 1
fi
hub() { $python -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$hubdir/hub.json" "$1"; }
hub_uri=$(hub hubUri)
echo "hub at $hub_uri (its certificate's CA goes with the instance's credentials: ca.crt)"

echo "== the stand-in CRM as a pod (portico-standin instance), and the PortalInstance"
for ns in portico-system support partners internal; do
  $kubectl create namespace "$ns" --dry-run=client -o yaml | $kubectl apply -f - >/dev/null
done
$kubectl -n portico-system create secret generic contoso-crm-credentials \
  --from-literal=token=demo-token --from-file=ca.crt="$hubdir/hub.crt" --dry-run=client -o yaml | $kubectl apply -f - >/dev/null
$kubectl -n portico-system apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: contoso-crm}
spec:
  selector: {matchLabels: {app: contoso-crm}}
  template:
    metadata: {labels: {app: contoso-crm}}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: instance
          image: $standin
          imagePullPolicy: Never
          args: [instance, --credentials-dir, /credentials, --solutions, "FieldService,ProjectService"]
          ports: [{containerPort: 8090}]
          readinessProbe: {httpGet: {path: /healthz, port: 8090}, periodSeconds: 1}
          volumeMounts: [{name: credentials, mountPath: /credentials, readOnly: true}]
          securityContext:
            runAsNonRoot: true
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
            seccompProfile: {type: RuntimeDefault}
      volumes: [{name: credentials, secret: {secretName: contoso-crm-credentials}}]
---
apiVersion: v1
kind: Service
metadata: {name: contoso-crm}
spec:
  selector: {app: contoso-crm}
  ports: [{port: 80, targetPort: 8090}]
YAML
$kubectl -n portico-system rollout status deployment/contoso-crm --timeout=180s
# No cluster DNS on the dev cluster: the instance is reached by its Service's ClusterIP
# (the operator runs in the node's network, as in a cluster), over plain HTTP: insecure.
crm_ip=$($kubectl -n portico-system get service contoso-crm -o jsonpath='{.spec.clusterIP}')
sed "s|url: .*|url: http://$crm_ip\n  insecure: true|" examples/contoso-instance.yaml \
  | $kubectl apply -f -

echo "== the demo's four portals, and contoso-support on https://$host"
# Secrets a portal names carry portico.dev/secret-for: Portico watches only those.
label="$kubectl label --local -f - portico.dev/secret-for=contoso-support -o yaml"
$kubectl -n support create secret generic contoso-insights --from-literal=sharedKey="$(hub key)" \
  --dry-run=client -o yaml | $label | $kubectl apply -f - >/dev/null
$kubectl -n support create secret generic contoso-oidc --from-literal=clientSecret=demo-secret \
  --dry-run=client -o yaml | $label | $kubectl apply -f - >/dev/null
$python scripts/demo_domain.py pfx support contoso-pfx "$host" | $kubectl apply -f - >/dev/null
# Each portal's session keys (Secret <portal>-session) are made by the operator.
$kubectl apply -f examples/customer-community.yaml -f examples/partner-partnerfieldservice.yaml \
  -f examples/employee-employeeselfservice.yaml -f examples/partner-customerselfservice.yaml
# contoso-support's identity provider (login.contoso.example) does not exist here, and
# provisioning checks every provider's discovery document: the demo applies it without one.
# Its hub (contoso.insights.example.net) is the stand-in above.
$python -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); d["spec"]["authentication"].pop("identityProviders", None); d["spec"]["analytics"]["customerInsights"]["hubUri"] = sys.argv[1]; print(yaml.safe_dump(d))' \
  "$hub_uri" < examples/customer-customerselfservice.yaml | $kubectl apply -f -

for _ in $(seq 1 60); do
  $kubectl get portals -A -o wide
  # grep reads everything (no -q): an early exit would fail the pipe under pipefail.
  if ! $kubectl get portals -A --no-headers | grep -v ' Ready ' >/dev/null; then break; fi
  sleep 5
done
$kubectl wait --for=condition=Ready portal --all -A --timeout=300s
$portico status contoso-support -n support
echo "demo took $(( $(date +%s) - started ))s"

https=$($portico dev status -o json | $python -c 'import json,sys; print(json.load(sys.stdin)["ingress"]["https"].rsplit(":", 1)[1])')

echo "== an invitation to contoso-support, handed over by hand (examples/invitations/fabrikam-team.yaml)"
$kubectl apply -f examples/invitations/fabrikam-team.yaml
# delivery: None: the operator writes the link (with its code) to the Secret fabrikam-team-link.
link=""
for _ in $(seq 1 60); do
  link=$($kubectl -n support get secret fabrikam-team-link -o jsonpath='{.data.link}' 2>/dev/null \
    | base64 -d 2>/dev/null || true)
  [ -n "$link" ] && break
  sleep 2
done
if [ -z "$link" ]; then
  $kubectl -n support describe portalinvitation fabrikam-team >&2
  echo "the invitation's link did not appear in Secret support/fabrikam-team-link" >&2
  exit 1
fi
# Traefik listens on a local port: the same link, through it.
local_link=$($python -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc=f"{p.hostname}:{sys.argv[2]}").geturl())' "$link" "$https")
invited_host=$($python -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname)' "$link")
# The link must open: through Traefik, over HTTPS, it redeems the code into the visitor's
# session and sends them on to the sign-up page (a browser follows; so does curl -L).
jar=$(mktemp); page=$(mktemp)
visit() { curl -sk -c "$jar" -b "$jar" --resolve "$invited_host:$https:127.0.0.1" "$@"; }
answer=$(visit -L -o "$page" -w '%{http_code}' "$local_link")
if [ "$answer" != 200 ]; then
  echo "the invitation link answered HTTP $answer (after its redirects): $local_link" >&2
  exit 1
fi

echo "== signed up through the invitation, a contact reads an article and searches"
base="https://$invited_host:$https"
csrf=$(grep -o 'name="csrf" value="[^"]*"' "$page" | head -1 | sed 's/.*value="//; s/"$//')
answer=$(visit -o /dev/null -w '%{http_code} %{redirect_url}' "$base/signup" \
  --data-urlencode "csrf=$csrf" --data-urlencode "email=ana@fabrikam.example" \
  --data-urlencode "firstName=Ana" --data-urlencode "lastName=Lind" \
  --data-urlencode "password=a long demo password")
case "$answer" in
  "303 "*/profile) ;;
  *) echo "signing up through the invitation answered: $answer" >&2; exit 1 ;;
esac
visit "$base/knowledge/KA-01001" -o "$page"
echo "article:  $(grep -o '<h1>[^<]*</h1>' "$page" | sed 's/<[^>]*>//g')"
visit -G "$base/search" --data-urlencode "q=reset password" -o "$page"
echo "search 'reset password':"
grep -o '<a href="/[a-z]*/[A-Z0-9-]*">[^<]*</a>' "$page" | sed 's/<[^>]*>//g; s/^/  - /'
rm -f "$jar" "$page"
for _ in $(seq 1 60); do
  $python scripts/demo_hub.py show "$hubdir" | grep -q '^2 interaction' && break
  sleep 1
done
echo "== what the stand-in hub received"
$python scripts/demo_hub.py show "$hubdir"

cat <<MSG

Every portal runs in real pods behind Traefik. contoso-support on its custom domain:
  curl --resolve $host:$https:127.0.0.1 -k https://$host:$https/

Invitation link (Group invitation fabrikam-team; the code is in Secret support/fabrikam-team-link):
  $link
Open it here: add "127.0.0.1 $invited_host" to /etc/hosts and visit (accept the demo's
self-signed certificate)
  $local_link
or without a browser:
  curl --resolve $invited_host:$https:127.0.0.1 -k '$local_link'

The control plane keeps running. Try:
  export KUBECONFIG=$KUBECONFIG
  $kubectl get portals,pods -A -o wide
  $python scripts/demo_hub.py show $hubdir   # the interactions the stand-in hub received
  $portico dev down; kill \$(cat $dnsdir/nsd.pid) \$(cat $hubdir/pid)    # stop everything
MSG
