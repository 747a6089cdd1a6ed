{{/*
Checkov's skip annotations (checkov.io/skipN: CHECK_ID=why) for what the chart does on
purpose, each only when it applies. tests/unit/test_checkov.py scans every rendering
with zero failed checks; a reason may hold no "=" (Checkov splits at it).
*/}}
{{- define "portico.checkov.operator" -}}
{{- $skips := list }}
{{- if not (.Values.resources.limits | default dict).cpu }}
{{- $skips = append $skips "CKV_K8S_11=no CPU limit unless resources.limits.cpu is set: a limit throttles the operator's reconcile bursts; CPU is requested and memory is limited" }}
{{- end }}
{{- if ne .Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=image.pullPolicy (IfNotPresent: a digest or a release tag that is never pushed again needs no pull at each start)" }}
{{- end }}
{{- $skips = append $skips "CKV_K8S_38=the operator talks to the API server with its ServiceAccount token (its RBAC is in rbac.yaml)" }}
{{- if not .Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=no digest is known for the operator image: you build and push it (operator/Dockerfile); set image.digest to the digest you pushed" }}
{{- end }}
{{- range $i, $skip := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end }}

{{- define "portico.checkov.pages" -}}
{{- $p := .Values.pages }}
{{- $skips := list }}
{{- if not ($p.resources.limits | default dict).cpu }}
{{- $skips = append $skips "CKV_K8S_11=no CPU limit unless pages.resources.limits.cpu is set: the page server's bursts are short; CPU is requested and memory is limited" }}
{{- end }}
{{- if ne (default .Values.runtimeImagePullPolicy $p.pullPolicy) "Always" }}
{{- $skips = append $skips "CKV_K8S_15=runtimeImagePullPolicy or pages.pullPolicy (IfNotPresent: a digest or a release tag that is never pushed again needs no pull at each start)" }}
{{- end }}
{{- $skips = append $skips "CKV_K8S_38=the page server reads Portals and EndpointSlices from the API server with its ServiceAccount token (read-only, templates/pages.yaml)" }}
{{- if not (contains "@sha256:" (default .Values.runtimeImage $p.image)) }}
{{- $skips = append $skips "CKV_K8S_43=no digest is known for the runtime image: you build and push it (runtime/Dockerfile); set runtimeImage (or pages.image) to NAME@sha256:DIGEST" }}
{{- end }}
{{- range $i, $skip := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end }}

{{/* The RoleBinding of the credentials Role (namespaced mode). */}}
{{- define "portico.checkov.credentials" -}}
checkov.io/skip1: "CKV2_K8S_5=get (never list or watch) of the PortalInstance credentials Secrets in instanceCredentialsNamespaces; their names are only known from the instances, so resourceNames cannot list them"
{{- end }}
