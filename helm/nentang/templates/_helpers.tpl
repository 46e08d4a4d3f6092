{{/*
Helpers of the Nentang chart.

The templates use only these functions, so that tests/helm_render (Go's text/template with the
same small set) renders the chart as Helm does:
  Go's own: and or not eq ne lt le gt ge len index print printf
  Helm and sprig: include required fail toYaml toJson nindent indent quote default empty trunc
    trimSuffix trimPrefix hasPrefix contains replace lower int int64 toString kindIs hasKey
    dict list ternary join add sub
Helm numbers in values are float64: pass them through int64 before printing, or 20971520
prints as 2.097152e+07.
*/}}

{{- define "nentang.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "nentang.fullname" -}}
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

{{/* A component's object name (dict "ctx" $ "component" "api"): the full name, shortened so
that the suffix always survives the 63-character limit. */}}
{{- define "nentang.componentName" -}}
{{- $room := int (sub 62 (len .component)) }}
{{- printf "%s-%s" (include "nentang.fullname" .ctx | trunc $room | trimSuffix "-") .component }}
{{- end }}

{{- define "nentang.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nentang.labels" -}}
helm.sh/chart: {{ include "nentang.chart" . }}
app.kubernetes.io/name: {{ include "nentang.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nentang
{{- end }}

{{/* Selector labels of one component (dict "ctx" $ "component" "api"). Never change them:
a Deployment's selector is immutable. */}}
{{- define "nentang.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nentang.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "nentang.componentLabels" -}}
{{ include "nentang.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "nentang.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "nentang.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nentang.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nentang.databaseSecret" -}}
{{- default (printf "%s-database" (include "nentang.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{- define "nentang.adminDatabaseSecret" -}}
{{- default (include "nentang.databaseSecret" .) .Values.database.adminExistingSecret }}
{{- end }}

{{- define "nentang.signingKeysSecret" -}}
{{- default (printf "%s-signing-keys" (include "nentang.fullname" .)) .Values.signingKeys.existingSecret }}
{{- end }}

{{- define "nentang.attachmentsOnVolume" -}}
{{- if hasPrefix "file://" .Values.attachments.storageUrl }}true{{ end }}
{{- end }}

{{/* Checks the schema cannot express; run from every workload template. */}}
{{- define "nentang.validate" -}}
{{- $issuer := required "config.issuer is required: the platform's public URL, e.g. --set config.issuer=https://nentang.example.gov.vn" .Values.config.issuer }}
{{- $storage := required "attachments.storageUrl is required: s3://BUCKET?endpoint=...&region=... or file:///DIR with attachments.volume.existingClaim" .Values.attachments.storageUrl }}
{{- if include "nentang.attachmentsOnVolume" . }}
{{- if not .Values.attachments.volume.existingClaim }}
{{- fail "attachments.storageUrl is a file:// directory but attachments.volume.existingClaim names no volume claim: the root filesystem is read-only and a pod's own disk goes with the pod" }}
{{- end }}
{{- if and (or (gt (int .Values.api.replicas) 1) .Values.api.autoscaling.enabled) (not .Values.attachments.volume.readWriteMany) }}
{{- fail "attachments on a file:// volume with more than one API replica need a ReadWriteMany claim (set attachments.volume.readWriteMany: true for such a claim), or use s3:// storage" }}
{{- end }}
{{- end }}
{{- if ge (int (add .Values.api.preStopSleepSeconds .Values.api.gracefulTimeoutSeconds)) (int .Values.api.terminationGracePeriodSeconds) }}
{{- fail "api.terminationGracePeriodSeconds must exceed api.preStopSleepSeconds + api.gracefulTimeoutSeconds, or the API is killed while it drains" }}
{{- end }}
{{- if ge (int .Values.worker.graceSeconds) (int .Values.worker.terminationGracePeriodSeconds) }}
{{- fail "worker.terminationGracePeriodSeconds must exceed worker.graceSeconds, or the worker is killed before it releases its work" }}
{{- end }}
{{- range $component := list "api" "worker" }}
{{- $scaling := (index $.Values $component).autoscaling }}
{{- if and $scaling.enabled (lt (int $scaling.maxReplicas) (int $scaling.minReplicas)) }}
{{- fail (printf "%s.autoscaling.maxReplicas must be at least %s.autoscaling.minReplicas" $component $component) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nentang.podSecurityContext" -}}
{{- $sc := .Values.securityContext -}}
runAsNonRoot: true
{{- if not (kindIs "invalid" (index $sc "runAsUser")) }}
runAsUser: {{ index $sc "runAsUser" | int64 }}
{{- end }}
{{- if not (kindIs "invalid" (index $sc "runAsGroup")) }}
runAsGroup: {{ index $sc "runAsGroup" | int64 }}
{{- end }}
{{- if not (kindIs "invalid" (index $sc "fsGroup")) }}
fsGroup: {{ index $sc "fsGroup" | int64 }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "nentang.containerSecurityContext" -}}
{{- $sc := .Values.securityContext -}}
runAsNonRoot: true
{{- if not (kindIs "invalid" (index $sc "runAsUser")) }}
runAsUser: {{ index $sc "runAsUser" | int64 }}
{{- end }}
{{- if not (kindIs "invalid" (index $sc "runAsGroup")) }}
runAsGroup: {{ index $sc "runAsGroup" | int64 }}
{{- end }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Variables every Nentang process gets, the migration job included. */}}
{{- define "nentang.baseEnv" -}}
- name: NENTANG_DATA_DIR
  value: /tmp/nentang
- name: NENTANG_DB_OWNER_ROLE
  value: {{ .Values.database.ownerRole | quote }}
- name: NENTANG_DB_APP_ROLE
  value: {{ .Values.database.appRole | quote }}
- name: NENTANG_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: NENTANG_LOG_JSON
  value: {{ .Values.config.logJson | toString | quote }}
{{- end }}

{{/* The optional service settings: each value set (not null, not removed) becomes its
variable. Read with index, not a dotted path: a key removed with null is no error. Numbers and lists go
through toJson, which prints integers whole and lists as the JSON the service parses. */}}
{{- define "nentang.configEnv" -}}
{{- $names := dict
  "accessTokenTtlSeconds" "NENTANG_ACCESS_TOKEN_TTL_SECONDS"
  "refreshTokenTtlSeconds" "NENTANG_REFRESH_TOKEN_TTL_SECONDS"
  "clientRateLimitPerMinute" "NENTANG_CLIENT_RATE_LIMIT_PER_MINUTE"
  "uiRedirectUris" "NENTANG_UI_REDIRECT_URIS"
  "idpAllowHttpLoopback" "NENTANG_IDP_ALLOW_HTTP_LOOPBACK"
  "loginMaxFailures" "NENTANG_LOGIN_MAX_FAILURES"
  "loginLockoutSeconds" "NENTANG_LOGIN_LOCKOUT_SECONDS"
  "idempotencyTtlSeconds" "NENTANG_IDEMPOTENCY_TTL_SECONDS"
  "attachmentMaxBytes" "NENTANG_ATTACHMENT_MAX_BYTES"
  "maxBodyBytes" "NENTANG_MAX_BODY_BYTES"
  "deliveryAllowPrivateTargets" "NENTANG_DELIVERY_ALLOW_PRIVATE_TARGETS"
  "deliveryMaxAttempts" "NENTANG_DELIVERY_MAX_ATTEMPTS"
  "deliveryTimeoutSeconds" "NENTANG_DELIVERY_TIMEOUT_SECONDS"
  "deliveryBackoffSeconds" "NENTANG_DELIVERY_BACKOFF_SECONDS"
  "deliveryLeaseSeconds" "NENTANG_DELIVERY_LEASE_SECONDS" }}
{{- range $key, $name := $names }}
{{- $value := index $.Values.config $key }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ $name }}
  value: {{ toJson $value | quote }}
{{- end }}
{{- end }}
{{- $poolSize := index .Values.database "poolSize" }}
{{- if not (kindIs "invalid" $poolSize) }}
- name: NENTANG_DB_POOL_SIZE
  value: {{ $poolSize | int64 | quote }}
{{- end }}
{{- end }}

{{/* OpenTelemetry: the standard OTEL_* variables. */}}
{{- define "nentang.telemetryEnv" -}}
{{- $t := .ctx.Values.telemetry -}}
- name: OTEL_SERVICE_NAME
  value: {{ $t.serviceName | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," (list $t.resourceAttributes (printf "k8s.namespace.name=%s" .ctx.Release.Namespace) (printf "k8s.deployment.name=%s" .name)) | trimPrefix "," | quote }}
- name: OTEL_TRACES_EXPORTER
  value: {{ $t.tracesExporter | quote }}
- name: OTEL_METRICS_EXPORTER
  value: {{ $t.metricsExporter | quote }}
{{- if $t.tracesSampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $t.tracesSampler | quote }}
{{- end }}
{{- if $t.tracesSamplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $t.tracesSamplerArg | quote }}
{{- end }}
{{- if $t.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $t.otlp.endpoint | quote }}
{{- end }}
{{- if $t.otlp.headersSecret.name }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ $t.otlp.headersSecret.name }}
      key: {{ $t.otlp.headersSecret.key }}
{{- end }}
{{- if eq $t.metricsExporter "prometheus" }}
- name: OTEL_EXPORTER_PROMETHEUS_HOST
  value: 0.0.0.0
- name: OTEL_EXPORTER_PROMETHEUS_PORT
  value: {{ $t.prometheus.port | int64 | quote }}
{{- end }}
{{- end }}

{{/* Variables of the long-running processes (dict "ctx" $ "component" "api"): the service's
unprivileged database role, never the owner's; no migrations at start (the hook job does them). */}}
{{- define "nentang.appEnv" -}}
{{- $root := .ctx -}}
{{ include "nentang.baseEnv" $root }}
- name: NENTANG_AUTO_MIGRATE
  value: "false"
- name: NENTANG_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "nentang.databaseSecret" $root }}
      key: {{ $root.Values.database.urlKey }}
- name: NENTANG_ISSUER
  value: {{ $root.Values.config.issuer | quote }}
{{- if eq .component "api" }}
- name: NENTANG_SIGNING_KEY_FILE
  value: {{ printf "%s/%s" ($root.Values.signingKeys.mountPath | trimSuffix "/") $root.Values.signingKeys.key | quote }}
- name: NENTANG_ATTACHMENT_STORAGE_URL
  value: {{ $root.Values.attachments.storageUrl | quote }}
{{- with $root.Values.attachments.s3 }}
{{- if .existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .secretAccessKeyKey }}
{{- if .sessionTokenKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .sessionTokenKey }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- include "nentang.configEnv" $root }}
{{ include "nentang.telemetryEnv" (dict "ctx" $root "name" (include "nentang.componentName" .)) }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "nentang.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/* Pod placement of a component (its values). */}}
{{- define "nentang.placement" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Prometheus scrape annotations, when asked for. */}}
{{- define "nentang.scrapeAnnotations" -}}
{{- $t := .Values.telemetry -}}
{{- if and (eq $t.metricsExporter "prometheus") $t.prometheus.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $t.prometheus.port | int64 | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}
