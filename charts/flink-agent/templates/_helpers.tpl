{{/*
Public templates, for a Flink app's chart that depends on this one:

  flink-agent.jobmanager.podTemplate    a whole FlinkDeployment podTemplate (Pod)
  flink-agent.taskmanager.podTemplate     for spec.jobManager / spec.taskManager
  flink-agent.jobmanager.sidecar        only the agent container (a list item), to
  flink-agent.taskmanager.sidecar         add to a podTemplate you already have
  flink-agent.jobmanager.volumes        only the volumes (list items)
  flink-agent.taskmanager.volumes
  flink-agent.mainContainer.volumeMounts  the log volume mount of flink-main-container
  flink-agent.podLabels                 the labels the PodMonitor selects (map entries)

Each takes the root context ($), or a dict with "root" ($) and, for a
dependency under an alias, "values" (that alias's values).

The templates read this chart's values from the caller's .Values["flink-agent"]
when called from a parent chart, or from .Values inside this chart. Names
never depend on .Chart, which is the caller's chart in a parent.
*/}}

{{- define "flink-agent.jobmanager.podTemplate" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "jobmanager" "part" "podTemplate") -}}
{{- end -}}
{{- define "flink-agent.taskmanager.podTemplate" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "taskmanager" "part" "podTemplate") -}}
{{- end -}}
{{- define "flink-agent.jobmanager.sidecar" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "jobmanager" "part" "sidecar") -}}
{{- end -}}
{{- define "flink-agent.taskmanager.sidecar" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "taskmanager" "part" "sidecar") -}}
{{- end -}}
{{- define "flink-agent.jobmanager.volumes" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "jobmanager" "part" "volumes") -}}
{{- end -}}
{{- define "flink-agent.taskmanager.volumes" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "taskmanager" "part" "volumes") -}}
{{- end -}}
{{- define "flink-agent.mainContainer.volumeMounts" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "jobmanager" "part" "mainMounts") -}}
{{- end -}}
{{- define "flink-agent.podLabels" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "jobmanager" "part" "podLabels") -}}
{{- end -}}

{{/* render resolves the caller's context into {root, v, component} and renders one part. */}}
{{- define "flink-agent.render" -}}
{{- $root := .arg -}}
{{- $v := dict -}}
{{- $explicit := false -}}
{{- if hasKey .arg "root" -}}
{{- $root = .arg.root -}}
{{- if hasKey .arg "values" -}}
{{- $v = .arg.values -}}
{{- $explicit = true -}}
{{- end -}}
{{- end -}}
{{- if not $explicit -}}
{{- $v = $root.Values -}}
{{- if hasKey $root.Values "flink-agent" -}}
{{- $v = index $root.Values "flink-agent" -}}
{{- end -}}
{{- end -}}
{{- if not (hasKey $v "sidecar") -}}
{{- fail "flink-agent: cannot find this chart's values; pass (dict \"root\" $ \"values\" .Values.<alias>) when the dependency has an alias" -}}
{{- end -}}
{{- $ctx := dict "root" $root "v" $v "component" .component -}}
{{- include (printf "flink-agent._%s" .part) $ctx -}}
{{- end -}}

{{/* fullname: <release>-flink-agent, independent of the calling chart. */}}
{{- define "flink-agent.fullname" -}}
{{- $v := .v -}}
{{- if $v.fullnameOverride -}}
{{- $v.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "flink-agent" $v.nameOverride -}}
{{- if contains $name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "flink-agent.labels" -}}
app.kubernetes.io/name: flink-agent
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .v.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: flink-agent-{{ .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "flink-agent._podLabels" -}}
flink-agent/sidecar: "true"
flink-agent/release: {{ .root.Release.Name | quote }}
{{- end -}}

{{- define "flink-agent.image" -}}
{{- if .v.image.digest -}}
{{ .v.image.repository }}@{{ .v.image.digest }}
{{- else -}}
{{ .v.image.repository }}:{{ .v.image.tag }}
{{- end -}}
{{- end -}}

{{/* Where things are mounted in the sidecar. */}}
{{- define "flink-agent.paths" -}}
config: /etc/flink-agent/config
positions: /var/lib/flink-agent
loki: /etc/flink-agent/secrets/loki
pagerduty: /etc/flink-agent/secrets/pagerduty
{{- end -}}

{{/*
config: the agent's YAML for one component. Chart-derived settings first,
then .Values.config merged on top, then what must hold for the pod layout
(positions file, listen port; TaskManagers serve no REST API and do not page).
*/}}
{{- define "flink-agent.config" -}}
{{- $v := .v -}}
{{- $p := include "flink-agent.paths" . | fromYaml -}}
{{- $base := dict
  "flink" (dict "rest_url" "http://localhost:8081")
  "logs" (dict "container" "flink-main-container")
  "dogstatsd" (dict "address" "") -}}
{{- with $v.loki.url -}}
{{- $loki := dict "url" . -}}
{{- with $v.loki.tenantId }}{{ $_ := set $loki "tenant_id" . }}{{ end -}}
{{- $s := $v.loki.secret -}}
{{- if $v.loki.username -}}
{{- if not $s.name }}{{ fail "loki.username needs loki.secret.name (a Secret with the password under loki.secret.passwordKey)" }}{{ end -}}
{{- $_ := set $loki "basic_auth" (dict "username" $v.loki.username "password_file" (printf "%s/%s" $p.loki $s.passwordKey)) -}}
{{- end -}}
{{- if $s.bearerTokenKey -}}
{{- if not $s.name }}{{ fail "loki.secret.bearerTokenKey needs loki.secret.name" }}{{ end -}}
{{- $_ := set $loki "bearer_token_file" (printf "%s/%s" $p.loki $s.bearerTokenKey) -}}
{{- end -}}
{{- $tls := dict -}}
{{- range $k, $f := dict "ca_file" $s.caKey "cert_file" $s.certKey "key_file" $s.keyKey -}}
{{- if $f -}}
{{- if not $s.name }}{{ fail "loki.secret.caKey/certKey/keyKey need loki.secret.name" }}{{ end -}}
{{- $_ := set $tls $k (printf "%s/%s" $p.loki $f) -}}
{{- end -}}
{{- end -}}
{{- if $tls }}{{ $_ := set $loki "tls" $tls }}{{ end -}}
{{- $_ := set $base "loki" $loki -}}
{{- end -}}
{{- if $v.datadog.enabled -}}
{{- $dd := dict "address" (printf "${DD_AGENT_HOST}:%d" (int $v.datadog.port)) "events" $v.datadog.events -}}
{{- with $v.datadog.tags }}{{ $_ := set $dd "tags" . }}{{ end -}}
{{- $_ := set $base "dogstatsd" $dd -}}
{{- end -}}
{{- if and $v.pagerduty.secret.name (eq .component "jobmanager") -}}
{{- $_ := set $base "pagerduty" (dict "routing_key_file" (printf "%s/routing-key" $p.pagerduty)) -}}
{{- end -}}
{{- $cfg := mustMergeOverwrite $base (deepCopy (default dict $v.config)) -}}
{{- $_ := set $cfg "logs" (mustMergeOverwrite (default dict $cfg.logs) (dict "positions_file" (printf "%s/positions.json" $p.positions))) -}}
{{- $_ := set $cfg "web" (mustMergeOverwrite (default dict $cfg.web) (dict "listen_address" (printf ":%d" (int $v.sidecar.metricsPort)))) -}}
{{- if eq .component "taskmanager" -}}
{{- $_ := set $cfg.flink "rest_url" "" -}}
{{- $_ := unset $cfg "pagerduty" -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* sidecar: the agent container, as one list item. */}}
{{- define "flink-agent._sidecar" -}}
{{- $v := .v -}}
{{- $p := include "flink-agent.paths" . | fromYaml -}}
{{- if and $v.sidecar.native (semverCompare "<1.29-0" .root.Capabilities.KubeVersion.Version) -}}
{{- fail (printf "sidecar.native needs Kubernetes >= 1.29 (native sidecar containers), this cluster is %s: set sidecar.native=false" .root.Capabilities.KubeVersion.Version) -}}
{{- end -}}
- name: {{ $v.sidecar.name }}
  image: {{ include "flink-agent.image" . }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if $v.sidecar.native }}
  # A native sidecar: started before flink-main-container, stopped after it.
  restartPolicy: Always
  {{- end }}
  args:
    - --config.file={{ $p.config }}/{{ .component }}.yaml
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: FLINK_CLUSTER
      {{- if $v.cluster }}
      value: {{ $v.cluster | quote }}
      {{- else }}
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['app']
      {{- end }}
    - name: FLINK_COMPONENT
      value: {{ .component }}
    {{- if (($v.sidecar.resources).limits).memory }}
    # The Go runtime collects harder near the container's memory limit.
    - name: GOMEMLIMIT
      valueFrom:
        resourceFieldRef:
          resource: limits.memory
    {{- end }}
    {{- if $v.datadog.enabled }}
    - name: DD_AGENT_HOST
      valueFrom:
        fieldRef:
          fieldPath: status.hostIP
    {{- end }}
    {{- with $v.sidecar.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: agent-metrics
      containerPort: {{ $v.sidecar.metricsPort }}
      protocol: TCP
  {{- with $v.sidecar.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.sidecar.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.sidecar.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  # Restricted Pod Security Standard; uid/gid 9999 is Flink's, so the agent
  # can read Flink's log files.
  securityContext:
    runAsNonRoot: true
    runAsUser: 9999
    runAsGroup: 9999
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: [ALL]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: flink-logs
      mountPath: /opt/flink/log
      readOnly: true
    - name: flink-agent-positions
      mountPath: {{ $p.positions }}
    - name: flink-agent-config
      mountPath: {{ $p.config }}
      readOnly: true
    {{- if $v.loki.secret.name }}
    - name: flink-agent-loki
      mountPath: {{ $p.loki }}
      readOnly: true
    {{- end }}
    {{- if and $v.pagerduty.secret.name (eq .component "jobmanager") }}
    - name: flink-agent-pagerduty
      mountPath: {{ $p.pagerduty }}
      readOnly: true
    {{- end }}
{{- end -}}

{{/* volumes: the pod volumes the sidecar and flink-main-container use. */}}
{{- define "flink-agent._volumes" -}}
{{- $v := .v -}}
- name: flink-logs
  {{- if $v.volumes.logsSizeLimit }}
  emptyDir:
    sizeLimit: {{ $v.volumes.logsSizeLimit }}
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: flink-agent-positions
  {{- if $v.volumes.positionsSizeLimit }}
  emptyDir:
    sizeLimit: {{ $v.volumes.positionsSizeLimit }}
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: flink-agent-config
  {{- if .inject }}
  # Injected pods live in any namespace, where this release's ConfigMap is
  # not: the webhook puts the configuration in the pod's own annotation.
  downwardAPI:
    items:
      - path: {{ .component }}.yaml
        fieldRef:
          fieldPath: metadata.annotations['{{ include "flink-agent.configAnnotation" . }}']
  {{- else }}
  configMap:
    name: {{ include "flink-agent.fullname" . }}
    items:
      - key: {{ .component }}.yaml
        path: {{ .component }}.yaml
  {{- end }}
{{- if $v.loki.secret.name }}
- name: flink-agent-loki
  secret:
    secretName: {{ $v.loki.secret.name }}
{{- end }}
{{- if and $v.pagerduty.secret.name (eq .component "jobmanager") }}
- name: flink-agent-pagerduty
  secret:
    secretName: {{ $v.pagerduty.secret.name }}
    items:
      - key: {{ $v.pagerduty.secret.key }}
        path: routing-key
{{- end }}
{{- end -}}

{{- define "flink-agent._mainMounts" -}}
- name: flink-logs
  mountPath: /opt/flink/log
{{- end -}}

{{/* podTemplate: a Pod for FlinkDeployment spec.jobManager/taskManager.podTemplate. */}}
{{- define "flink-agent._podTemplate" -}}
{{- $v := .v -}}
apiVersion: v1
kind: Pod
metadata:
  labels:
    {{- include "flink-agent._podLabels" . | nindent 4 }}
spec:
  {{- with $v.podTemplate.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $v.sidecar.native }}
  initContainers:
    {{- include "flink-agent._sidecar" . | nindent 4 }}
  {{- end }}
  containers:
    # Flink's main container: the operator merges this with its own spec.
    - name: flink-main-container
      {{- with $v.podTemplate.mainContainerSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        {{- include "flink-agent._mainMounts" . | nindent 8 }}
    {{- if not $v.sidecar.native }}
    {{- include "flink-agent._sidecar" . | nindent 4 }}
    {{- end }}
  volumes:
    {{- include "flink-agent._volumes" . | nindent 4 }}
{{- end -}}


{{- define "flink-agent.configAnnotation" -}}
flink-agent/config
{{- end -}}

{{/*
webhookSidecar: what the webhook adds to one kind of Flink pod (its
--webhook.config-file holds one per component). The same templates as the
pod templates, so the chart stays the one description of the sidecar.
*/}}
{{- define "flink-agent._webhookSidecar" -}}
{{- $ctx := merge (dict "inject" true) . -}}
native: {{ .v.sidecar.native }}
container:
  {{- include "flink-agent._sidecar" $ctx | fromYamlArray | first | toYaml | nindent 2 }}
volumes:
  {{- include "flink-agent._volumes" $ctx | nindent 2 }}
mainContainerVolumeMounts:
  {{- include "flink-agent._mainMounts" $ctx | nindent 2 }}
labels:
  {{- include "flink-agent._podLabels" $ctx | nindent 2 }}
annotations:
  {{ include "flink-agent.configAnnotation" $ctx }}: {{ include "flink-agent.config" $ctx | quote }}
{{- end -}}

{{/* webhookConfig: the webhook's --webhook.config-file. */}}
{{- define "flink-agent.webhookConfig" -}}
jobmanager:
  {{- include "flink-agent._webhookSidecar" (merge (dict "component" "jobmanager") .) | nindent 2 }}
taskmanager:
  {{- include "flink-agent._webhookSidecar" (merge (dict "component" "taskmanager") .) | nindent 2 }}
{{- end -}}

{{/* crdCheck: a jsonpath that reads the FlinkDeployment CRD's container-level restartPolicy (operator >= 1.9.0). */}}
{{- define "flink-agent.crdCheck" -}}
{.spec.versions[?(@.name=="v1beta1")].schema.openAPIV3Schema.properties.spec.properties.jobManager.properties.podTemplate.properties.spec.properties.initContainers.items.properties.restartPolicy.type}
{{- end -}}
