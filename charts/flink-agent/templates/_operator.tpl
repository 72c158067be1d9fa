{{/*
The Flink Kubernetes Operator's pod: public templates for the values of the
operator's own Helm chart (flink-kubernetes-operator), which renders
operatorPod.initContainers / sidecarContainers, operatorVolumes.data and
operatorVolumeMounts.data with toYaml, and appends
defaultConfiguration."log4j-operator.properties" to its log4j configuration.

  flink-agent.operator.values        all of the below as operator chart values
  flink-agent.operator.sidecar       the agent container (a list item)
  flink-agent.operator.volumes       operatorVolumes.data (list items)
  flink-agent.operator.volumeMounts  operatorVolumeMounts.data (list items)
  flink-agent.operator.log4j         the log4j-operator.properties snippet

Each takes the root context ($) or a dict with "root" and "values", like the
FlinkDeployment templates. templates/operator-values.yaml prints
flink-agent.operator.values for `helm template --show-only` (operator.printValues).

The operator logs to its console only. The snippet adds a rolling file with
the console pattern minus its colour codes (helm/flink-kubernetes-operator/
conf/log4j-operator.properties), on an emptyDir the agent reads. The webhook
container reads the same log4j file but has no such volume: the appender only
receives events where FLINK_AGENT_OPERATOR_LOG is set (the operator
container, through operatorPod.env), and creates its file on demand, so the
webhook writes nothing.
*/}}

{{- define "flink-agent.operator.values" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "operator" "part" "operatorValues") -}}
{{- end -}}
{{- define "flink-agent.operator.sidecar" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "operator" "part" "sidecar") -}}
{{- end -}}
{{- define "flink-agent.operator.volumes" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "operator" "part" "operatorVolumes") -}}
{{- end -}}
{{- define "flink-agent.operator.volumeMounts" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "operator" "part" "operatorMounts") -}}
{{- end -}}
{{- define "flink-agent.operator.log4j" -}}
{{- include "flink-agent.render" (dict "arg" . "component" "operator" "part" "operatorLog4j") -}}
{{- end -}}

{{/* The log file's name: the agent infers component "operator" from it. */}}
{{- define "flink-agent._operatorLogFile" -}}
{{ trimSuffix "/" .v.operator.logDir }}/flink-kubernetes-operator.log
{{- end -}}

{{- define "flink-agent._operatorLog4j" -}}
{{- $file := include "flink-agent._operatorLogFile" . -}}
# flink-agent: the operator's log as a rolling file for the agent sidecar
# (the console pattern without colour codes).
rootLogger.appenderRef.flinkagent.ref = FlinkAgentFile
rootLogger.appenderRef.flinkagent.level = ${env:FLINK_AGENT_OPERATOR_LOG:-OFF}
appender.flinkagent.name = FlinkAgentFile
appender.flinkagent.type = RollingFile
appender.flinkagent.fileName = {{ $file }}
appender.flinkagent.filePattern = {{ $file }}.%i
appender.flinkagent.createOnDemand = true
appender.flinkagent.layout.type = PatternLayout
appender.flinkagent.layout.pattern = %d %-30c{1.} [%-5level]%notEmpty{[%X{resource.namespace}/}%notEmpty{%X{resource.name}]} %msg%n%throwable
appender.flinkagent.policies.type = Policies
appender.flinkagent.policies.size.type = SizeBasedTriggeringPolicy
appender.flinkagent.policies.size.size = {{ .v.operator.logFileSize }}
appender.flinkagent.strategy.type = DefaultRolloverStrategy
appender.flinkagent.strategy.max = {{ int .v.operator.logFiles }}
{{- end -}}

{{/* Volumes: the operator chart's own default (flink-artifacts-volume, which
operatorVolumes.create replaces) and the agent's. */}}
{{- define "flink-agent._operatorVolumes" -}}
{{- $v := .v -}}
- name: flink-artifacts-volume
  emptyDir: {}
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
  configMap:
    name: {{ include "flink-agent.fullname" . }}-operator
    items:
      - key: operator.yaml
        path: operator.yaml
{{- if $v.loki.secret.name }}
- name: flink-agent-loki
  secret:
    secretName: {{ $v.loki.secret.name }}
{{- end }}
{{- end -}}

{{/* Mounts of the operator container: the chart's default artifacts mount
(replaced by operatorVolumeMounts.create) and the log directory. */}}
{{- define "flink-agent._operatorMounts" -}}
- name: flink-artifacts-volume
  mountPath: /opt/flink/artifacts
- name: flink-logs
  mountPath: {{ trimSuffix "/" .v.operator.logDir }}
{{- end -}}

{{/* The agent's configuration for the operator pod: no REST API, no paging,
the operator's container name on its Loki streams. The sidecar mounts the
shared volume at /opt/flink/log, the default logs.paths. */}}
{{- define "flink-agent._operatorConfig" -}}
{{- $cfg := include "flink-agent.config" . | fromYaml -}}
{{- $_ := set $cfg.flink "rest_url" "" -}}
{{- $_ := set $cfg.logs "container" .v.operator.containerName -}}
{{- $_ := unset $cfg "pagerduty" -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "flink-agent._operatorValues" -}}
{{- $v := .v -}}
operatorPod:
  # The agent's PodMonitor selects these.
  labels:
    {{- include "flink-agent._podLabels" . | nindent 4 }}
  # Only the operator container writes the agent's log file (not the webhook).
  env:
    - name: FLINK_AGENT_OPERATOR_LOG
      value: ALL
  {{- if $v.sidecar.native }}
  initContainers:
  {{- else }}
  sidecarContainers:
  {{- end }}
    {{- include "flink-agent._sidecar" . | nindent 4 }}
operatorVolumes:
  create: true
  data:
    {{- include "flink-agent._operatorVolumes" . | nindent 4 }}
operatorVolumeMounts:
  create: true
  data:
    {{- include "flink-agent._operatorMounts" . | nindent 4 }}
defaultConfiguration:
  log4j-operator.properties: |+
    {{- include "flink-agent._operatorLog4j" . | nindent 4 }}
{{- end -}}
