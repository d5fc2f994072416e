{{/* Name of an object of this release, for one role when given. */}}
{{- define "sluice.fullname" -}}
{{- printf "%s-sluice" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.labels" -}}
app.kubernetes.io/name: sluice
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The settings every role reads, as SLUICE_* environment variables. */}}
{{- define "sluice.env" -}}
- name: SLUICE_BUS
  value: kafka
- name: SLUICE_KAFKA_BROKERS
  value: {{ .Values.kafka.brokers | quote }}
- name: SLUICE_STORE
  valueFrom:
    secretKeyRef:
      name: {{ include "sluice.fullname" . }}-store
      key: url
- name: SLUICE_REGISTRY_URL
  value: {{ printf "http://%s-registry:%v" (include "sluice.fullname" .) .Values.roles.registry.port | quote }}
- name: SLUICE_METRICS_LISTEN
  value: {{ printf "0.0.0.0:%v" .Values.metricsPort | quote }}
- name: SLUICE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.tracing.endpoint }}
- name: SLUICE_TRACE_ENDPOINT
  value: {{ .Values.tracing.endpoint | quote }}
- name: SLUICE_TRACE_SAMPLE_RATIO
  value: {{ .Values.tracing.sampleRatio | quote }}
{{- end }}
{{- end -}}
