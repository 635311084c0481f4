{{/*
Names, labels and shared pod fragments. Every object carries the standard
app.kubernetes.io labels; selectors use only name, instance and component, which never
change across upgrades.
*/}}

{{- define "mhe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mhe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: "<fullname>-<component>". Call with (list $ "aggregator"). */}}
{{- define "mhe.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "mhe.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{- define "mhe.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "mhe.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "mhe.labels" -}}
{{- $root := index . 0 -}}
{{ include "mhe.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: model-health-exporter
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mhe.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Prometheus job names: the ones the generated alert rules and dashboards select on. */}}
{{- define "mhe.job" -}}
{{- index (dict "aggregator" "model-health-aggregator" "sidecar" "model-health-sidecar" "node-agent" "model-health-node" "relay" "model-health-relay" "injector" "model-health-injector") . -}}
{{- end -}}

{{- define "mhe.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
fsGroup: {{ .Values.securityContext.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mhe.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod fields shared by every component: call with (list $ .Values.<component>). */}}
{{- define "mhe.podCommon" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "mhe.podSecurityContext" $root | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $component.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Liveness and readiness on /healthz and /readyz of the named port. (list "http" "HTTP") */}}
{{- define "mhe.probes" -}}
{{- $port := index . 0 -}}
{{- $scheme := index . 1 -}}
livenessProbe:
  httpGet: {path: /healthz, port: {{ $port }}, scheme: {{ $scheme }}}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: {{ $port }}, scheme: {{ $scheme }}}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{/* Injector TLS: the secret holding tls.crt / tls.key (and ca.crt). */}}
{{- define "mhe.injector.tlsSecret" -}}
{{- if eq .Values.injector.tls.mode "secret" -}}
{{- required "injector.tls.secret.name is required when injector.tls.mode is secret" .Values.injector.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "mhe.componentName" (list . "injector")) -}}
{{- end -}}
{{- end -}}

{{- define "mhe.injector.serviceHost" -}}
{{- printf "%s.%s.svc" (include "mhe.componentName" (list . "injector")) .Release.Namespace -}}
{{- end -}}

{{/* Namespaces the webhook never sees: kube-system, this release's own, and any listed. */}}
{{- define "mhe.injector.excludedNamespaces" -}}
{{- $names := list "kube-system" .Release.Namespace -}}
{{- range .Values.injector.excludeNamespaces -}}
{{- $names = append $names . -}}
{{- end -}}
{{- toJson (uniq $names) -}}
{{- end -}}
