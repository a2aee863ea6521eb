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
