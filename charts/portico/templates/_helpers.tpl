{{/*
Base name of every object: the release name, with "-portico" appended unless it already says portico.
*/}}
{{- define "portico.fullname" -}}
{{- if contains "portico" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-portico" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "portico.controllerManagerName" -}}
{{- printf "%s-controller-manager" (include "portico.fullname" .) -}}
{{- end -}}

{{- define "portico.agentName" -}}
{{- printf "%s-agent" (include "portico.fullname" .) -}}
{{- end -}}

{{- define "portico.webhookName" -}}
{{- printf "%s-webhook" (include "portico.fullname" .) -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "portico.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: portico
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "agent"). */}}
{{- define "portico.selectorLabels" -}}
app.kubernetes.io/name: portico
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image reference; call with (dict "root" $ "image" .Values.image.agent). */}}
{{- define "portico.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Secret holding the webhook serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "portico.webhookTLSSecretName" -}}
{{- printf "%s-tls" (include "portico.webhookName" .) -}}
{{- end -}}


{{- /*
Objects in the release namespace never go through Portico's webhooks: Portico's own Service and
the EndpointSlices that route to it must be writable while no replica is up, or a restart of every
replica could never complete.
*/}}
{{- define "portico.webhookCommon" -}}
admissionReviewVersions: ["v1"]
timeoutSeconds: {{ .root.Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: [{{ .root.Release.Namespace | quote }}]
clientConfig:
  service:
    name: {{ include "portico.webhookName" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- if .caBundle }}
  caBundle: {{ .caBundle }}
  {{- end }}
{{- end }}

{{/*
Checks the schema cannot express, with messages phrased as Kubernetes phrases field errors.
*/}}
{{- define "portico.validateValues" -}}
{{- $ports := splitList "-" .Values.serviceNodePortRange -}}
{{- $first := index $ports 0 | int -}}
{{- $last := index $ports 1 | int -}}
{{- if or (lt $first 1) (gt $last 65535) (gt $first $last) -}}
{{- fail (printf "serviceNodePortRange: Invalid value: %q: must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535, and equal kube-apiserver's --service-node-port-range" .Values.serviceNodePortRange) -}}
{{- end -}}
{{- if and (not .Values.controllerManager.leaderElection.enabled) (gt (int .Values.controllerManager.replicas) 1) -}}
{{- fail (printf "controllerManager.leaderElection.enabled: Invalid value: false: must be true when controllerManager.replicas is %d, or every replica would run the controllers" (int .Values.controllerManager.replicas)) -}}
{{- end -}}
{{- end -}}

{{/* API server address for Portico's pods, which cannot rely on the kubernetes Service's ClusterIP. */}}
{{- define "portico.kubernetesAPIEnv" -}}
- name: KUBERNETES_SERVICE_HOST
  value: {{ .Values.kubernetesAPI.host | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .Values.kubernetesAPI.port | quote }}
{{- end -}}
