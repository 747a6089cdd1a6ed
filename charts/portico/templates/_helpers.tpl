{{/* Names are cut at 63 characters: Kubernetes label values and DNS labels. */}}
{{- define "portico.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portico.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "portico.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "portico.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "portico.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portico.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portico.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portico.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "portico.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* A matchLabels map as the operator's `key=value,...` settings form. */}}
{{- define "portico.labelTerms" -}}
{{- $terms := list }}
{{- range $k, $v := . }}{{ $terms = append $terms (printf "%s=%s" $k $v) }}{{ end }}
{{- $terms | sortAlpha | join "," }}
{{- end }}

{{/* "true" when leader election is on: more than one operator pod. */}}
{{- define "portico.leaderElection" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{/* The watched namespaces, comma-separated (empty: cluster-wide); `namespaces` is the
deprecated name of watchNamespaces. */}}
{{- define "portico.watchNamespaces" -}}
{{- default .Values.namespaces .Values.watchNamespaces | join "," }}
{{- end }}

{{/* Namespaces whose Secrets hold PortalInstance credentials (namespaced mode). */}}
{{- define "portico.credentialsNamespaces" -}}
{{- $out := list }}
{{- range (default (list .Release.Namespace) .Values.instanceCredentialsNamespaces) }}
{{- if not (has . (splitList "," (include "portico.watchNamespaces" $))) }}{{ $out = append $out . }}{{ end }}
{{- end }}
{{- $out | uniq | join "," }}
{{- end }}

{{/*
RBAC rules. Each rule is one line of the permission table in docs/install.md;
tests/unit/test_chart.py keeps the two in sync.
*/}}
{{- define "portico.rules.clusterScoped" -}}
- apiGroups: [portico.dev]
  resources: [portalinstances]
  verbs: [get, list, watch]
- apiGroups: [portico.dev]
  resources: [portalinstances/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- if .Values.hostPolicy.enabled }}
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingadmissionpolicies]
  resourceNames: [{{ include "portico.hostPolicyName" . | quote }}]
  verbs: [get]
{{- end }}
{{- if .Values.metrics.authenticate }}
# /metrics behind the API server's authentication: who a scraper's token is, and whether
# that user may get /metrics.
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
{{- end }}
{{- end }}

{{- define "portico.rules.namespaced" -}}
- apiGroups: [portico.dev]
  resources: [portals]
  verbs: [get, list, watch]
- apiGroups: [portico.dev]
  resources: [portals/status]
  verbs: [patch]
# Invitations: watched, their status written, and a finalizer (revoke at the instance on delete).
- apiGroups: [portico.dev]
  resources: [portalinvitations]
  verbs: [get, list, watch, patch]
- apiGroups: [portico.dev]
  resources: [portalinvitations/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
{{ include "portico.rules.events" . }}
{{- if .Values.certManager.enabled }}
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [get, list, watch, create, patch, delete]
{{- end }}
{{- if .Values.portalNetworkPolicy.enabled }}
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
{{- end }}
{{- if eq .Values.ingressController "traefik" }}
- apiGroups: [traefik.io]
  resources: [middlewares]
  verbs: [get, list, watch, create, patch, delete]
{{- end }}
{{- end }}

{{- define "portico.rules.events" -}}
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* The Lease portico-leader: create it once, then read and renew only that one. */}}
{{- define "portico.rules.leaderElection" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [portico-leader]
  verbs: [get, update]
{{- end }}

{{- define "portico.rules.reservations" -}}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [portico-reservations]
  verbs: [get, patch]
{{- end }}

{{- define "portico.rules.credentials" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}

{{/* Restricted Pod Security for the operator container. */}}
{{- define "portico.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* A Role and its RoleBinding to the operator: dict ctx, ns, suffix, rules (YAML text). */}}
{{- define "portico.role" -}}
{{- $name := include "portico.fullname" .ctx }}
{{- if .suffix }}{{ $name = printf "%s-%s" $name .suffix }}{{ end }}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ .ns }}
  labels:
    {{- include "portico.labels" .ctx | nindent 4 }}
rules:
  {{- .rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ .ns }}
  labels:
    {{- include "portico.labels" .ctx | nindent 4 }}
  {{- with .skips }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "portico.serviceAccountName" .ctx }}
    namespace: {{ .ctx.Release.Namespace }}
{{- end }}

{{/*
The page server (templates/pages.yaml). Its own app.kubernetes.io/name, so the
operator Deployment's selector (name + instance) never matches its pods.
*/}}
{{- define "portico.pages.fullname" -}}
{{- printf "%s-pages" (include "portico.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portico.pages.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-pages" (include "portico.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portico.pages.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "portico.pages.selectorLabels" . }}
app.kubernetes.io/part-of: {{ include "portico.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: pages
{{- end }}

{{/* What the page server reads (get, list, watch only); docs/install.md lists each. */}}
{{- define "portico.rules.pages" -}}
- apiGroups: [portico.dev]
  resources: [portals]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
# Custom maintenance pages: it lists and watches only the operator's copies (a label
# selector), but RBAC cannot narrow a list by label.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list, watch]
{{- end }}
The issuers a portal's issuerRef may name (PORTICO_ALLOWED_ISSUERS): the configured
certManager.issuer first, then certManager.allowedIssuers, as Kind/name entries.
*/}}
{{- define "portico.allowedIssuers" -}}
{{- $entries := list -}}
{{- with .Values.certManager.issuer -}}
{{- if .name -}}
{{- $kind := .kind | default "ClusterIssuer" -}}
{{- $group := "" -}}
{{- if and .group (ne .group "cert-manager.io") -}}{{- $group = printf ".%s" .group -}}{{- end -}}
{{- $entries = append $entries (printf "%s%s/%s" $kind $group .name) -}}
{{- end -}}
{{- end -}}
{{- join "," (concat $entries (.Values.certManager.allowedIssuers | default list)) -}}
{{- end -}}
