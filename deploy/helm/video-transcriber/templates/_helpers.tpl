{{- define "vt.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vt.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vt.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "vt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "vt.selector" -}}
app.kubernetes.io/name: {{ include "vt.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "vt.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "vt.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "vt.fullname" .) -}}
{{- end -}}

{{- define "vt.scale" -}}
{{- if not (has .Values.mode (list "onebox" "scale")) -}}
{{- fail (printf "mode must be onebox or scale, not %q" .Values.mode) -}}
{{- end -}}
{{- if eq .Values.mode "scale" -}}true{{- end -}}
{{- end -}}

{{/* Settings every transcriber container gets: the ConfigMap, then the Secret. */}}
{{- define "vt.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "vt.fullname" . }}
  - secretRef:
      name: {{ include "vt.secretName" . }}
{{- end -}}

{{/* Non-root, read-only root file system, no capabilities: the image runs as uid 10001. */}}
{{- define "vt.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "vt.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}
