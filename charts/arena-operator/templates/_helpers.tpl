{{/* Chart name (nameOverride wins). */}}
{{- define "arena-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, else the release name when it already contains the
chart name (so `helm install arena-operator ...` gives `arena-operator`), else
RELEASE-arena-operator. Truncated to 63 characters (DNS label).
*/}}
{{- define "arena-operator.fullname" -}}
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

{{/* name-version for the helm.sh/chart label. */}}
{{- define "arena-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "arena-operator.labels" -}}
helm.sh/chart: {{ include "arena-operator.chart" . }}
{{ include "arena-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: arena
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector labels (immutable on a Deployment: never add to them). */}}
{{- define "arena-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arena-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "arena-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "arena-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Service that exposes /metrics; also the Prometheus `job` label when scraped through the ServiceMonitor. */}}
{{- define "arena-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "arena-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "arena-operator.image" -}}
{{- if eq .Values.image.tag "latest" }}
{{- fail "image.tag: 'latest' is not allowed: pin a version (the default is the chart's appVersion) or set image.digest" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
V8's old space of the operator, MiB: 60% of resources.limits.memory, rounded
down, at least 16 (the rule of operator/heap.ts, heapLimitMiB); empty without a
memory limit. The Deployment passes it in NODE_OPTIONS, so `arena operator run`
starts with it and does not re-execute itself to apply the rule.
*/}}
{{- define "arena-operator.heapMiB" -}}
{{- $q := "" }}
{{- with .Values.resources }}{{ with .limits }}{{ with .memory }}{{ $q = toString . }}{{ end }}{{ end }}{{ end }}
{{- if $q }}
{{- $num := regexFind "^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)" $q }}
{{- $suffix := trimPrefix $num $q }}
{{- $bytes := 0.0 }}
{{- if regexMatch "^[eE]" $suffix }}
{{- $bytes = float64 $q }}
{{- else }}
{{- $units := dict "" 1.0 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- $bytes = mulf (float64 $num) (get $units $suffix) }}
{{- end }}
{{- max 16 (floor (divf (mulf $bytes 0.6) 1048576) | int64) }}
{{- end }}
{{- end }}
