{{/*
Helpers. Component templates get a context dict: root (the top-level context), key (initiatingGateway |
respondingGateway | imagingSource), comp (initiating-gateway | responding-gateway | imaging-source) and v
(the component's values).
Numbers from values are float64 under real Helm: always print them through int/int64.
*/}}

{{- define "xcai.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "xcai.fullname" -}}
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

{{- define "xcai.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The components this chart can deploy: values key -> component name (JSON; use with fromJson). */}}
{{- define "xcai.components" -}}
{"initiatingGateway":"initiating-gateway","respondingGateway":"responding-gateway","imagingSource":"imaging-source"}
{{- end -}}

{{- define "xcai.componentName" -}}
{{- printf "%s-%s" (include "xcai.fullname" .root) .comp | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "xcai.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xcai.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .comp }}
app.kubernetes.io/component: {{ .comp }}
{{- end }}
{{- end -}}

{{- define "xcai.labels" -}}
helm.sh/chart: {{ include "xcai.chart" .root }}
{{ include "xcai.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: xcai-gateway
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "xcai.serviceAccountName" -}}
{{- if .v.serviceAccount.create -}}
{{- default (include "xcai.componentName" .) .v.serviceAccount.name -}}
{{- else -}}
{{- default "default" .v.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference; pinned by digest when one is given (R26). */}}
{{- define "xcai.image" -}}
{{- $img := .v.image -}}
{{- $registry := default $img.registry .root.Values.global.imageRegistry -}}
{{- $repo := $img.repository -}}
{{- if $registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $registry) $repo -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repo $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (toString (default .root.Chart.AppVersion $img.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "xcai.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "xcai.componentName" .)) .v.tls.existingSecret -}}
{{- end -}}

{{- define "xcai.publicUrl" -}}
{{- if .v.publicUrl -}}
{{- .v.publicUrl -}}
{{- else -}}
{{- printf "https://%s.%s.svc:%d" (include "xcai.componentName" .) .root.Release.Namespace (int .v.service.port) -}}
{{- end -}}
{{- end -}}

{{/*
The base URL the other replicas of the initiating gateway use to hand over async responses (XCAI_INTERNAL_URL):
<gw>.internalUrl, else https://$(POD_IP):<soap port> ($(POD_IP) is expanded by Kubernetes from the env).
*/}}
{{- define "xcai.internalUrl" -}}
{{- if .v.internalUrl -}}
{{- .v.internalUrl -}}
{{- else -}}
{{- printf "https://$(POD_IP):%d" (int .v.containerPorts.soap) -}}
{{- end -}}
{{- end -}}

{{/* XCAI_REDIS_PREFIX: <redis.keyPrefix or "xcai:<namespace>:"><component name>: — one per gateway deployment. */}}
{{- define "xcai.redisPrefix" -}}
{{- $base := default (printf "xcai:%s:" .root.Release.Namespace) .root.Values.redis.keyPrefix -}}
{{- printf "%s%s:" $base (include "xcai.componentName" .) -}}
{{- end -}}

{{/* A size value (integer bytes or a string such as 4MiB) as the services read it; never in float notation. */}}
{{- define "xcai.sizeValue" -}}
{{- if kindIs "string" . -}}
{{- . -}}
{{- else -}}
{{- . | int64 -}}
{{- end -}}
{{- end -}}

{{/* Bytes of a Kubernetes quantity (512Mi, 1Gi, 2G, 1.5Gi, 1000000); fails on anything else. */}}
{{- define "xcai.quantityBytes" -}}
{{- $q := toString . -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $unit := trimPrefix $num $q -}}
{{- $mult := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- if or (not $num) (not (hasKey $mult $unit)) -}}
{{- fail (printf "%q is not a quantity such as 512Mi or 1Gi" $q) -}}
{{- end -}}
{{- mulf (float64 $num) (index $mult $unit) | floor | int64 -}}
{{- end -}}

{{- define "xcai.directoryConfigMapName" -}}
{{- printf "%s-directory" (include "xcai.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The directory file exactly as the services read it: values.directory without the chart-only `egress` keys.
Both the ConfigMap and the pods' checksum annotation use this, so a change that only touches egress updates
the NetworkPolicy without restarting pods.
*/}}
{{- define "xcai.directory" -}}
{{- $d := deepCopy .Values.directory -}}
{{- range $listKey := list "communities" "consumers" -}}
{{- if hasKey $d $listKey -}}
{{- $l := list -}}
{{- range (default (list) (get $d $listKey)) -}}
{{- $l = append $l (omit . "egress") -}}
{{- end -}}
{{- $_ := set $d $listKey $l -}}
{{- end -}}
{{- end -}}
{{- if hasKey $d "local" -}}
{{- $loc := get $d "local" -}}
{{- range $one := list "registry" "patientDemographicsSupplier" -}}
{{- if and (hasKey $loc $one) (get $loc $one) -}}
{{- $_ := set $loc $one (omit (get $loc $one) "egress") -}}
{{- end -}}
{{- end -}}
{{- range $listKey := list "repositories" "imagingDocumentSources" -}}
{{- if hasKey $loc $listKey -}}
{{- $l := list -}}
{{- range (default (list) (get $loc $listKey)) -}}
{{- $l = append $l (omit . "egress") -}}
{{- end -}}
{{- $_ := set $loc $listKey $l -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with (get $d "consent") -}}
{{- if get . "service" -}}
{{- $_ := set . "service" (omit (get . "service") "egress") -}}
{{- end -}}
{{- end -}}
{{- with (get $d "breakGlass") -}}
{{- if get . "webhook" -}}
{{- $_ := set . "webhook" (omit (get . "webhook") "egress") -}}
{{- end -}}
{{- end -}}
{{- if hasKey $d "revocation" -}}
{{- $l := list -}}
{{- range (default (list) (get $d "revocation")) -}}
{{- if get . "ocsp" -}}
{{- $l = append $l (set (deepCopy .) "ocsp" (omit (get . "ocsp") "egress")) -}}
{{- else -}}
{{- $l = append $l . -}}
{{- end -}}
{{- end -}}
{{- $_ := set $d "revocation" $l -}}
{{- end -}}
{{- toYaml $d -}}
{{- end -}}

{{/*
Port of a URL: the explicit port, else the scheme's default (https 443, http 80, redis/rediss 6379).
Empty when it cannot be derived (e.g. a `:*` wildcard in a replyTo pattern).
*/}}
{{- define "xcai.urlPort" -}}
{{- $u := toString . -}}
{{- $scheme := lower (regexFind "^[a-zA-Z][a-zA-Z0-9+.-]*://" $u | trimSuffix "://") -}}
{{- if $scheme -}}
{{- $auth := regexReplaceAll "^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*).*$" $u "${1}" -}}
{{- $auth = regexReplaceAll "^.*@" $auth "" -}}
{{- $port := regexFind ":[0-9]+$" $auth | trimPrefix ":" -}}
{{- if $port -}}
{{- $port -}}
{{- else if contains "*" $auth -}}
{{- else if regexMatch ":$" $auth -}}
{{- else if eq $scheme "https" -}}
443
{{- else if eq $scheme "http" -}}
80
{{- else if or (eq $scheme "redis") (eq $scheme "rediss") -}}
6379
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A NetworkPolicyPeer (JSON) from a chart peer entry: {cidr, except?} or {namespaceSelector?, podSelector?}. */}}
{{- define "xcai.peer" -}}
{{- $e := .entry -}}
{{- $p := dict -}}
{{- if hasKey $e "cidr" -}}
{{- $ib := dict "cidr" (get $e "cidr") -}}
{{- if get $e "except" -}}
{{- $_ := set $ib "except" (get $e "except") -}}
{{- end -}}
{{- $_ := set $p "ipBlock" $ib -}}
{{- else -}}
{{- if hasKey $e "namespaceSelector" -}}
{{- $_ := set $p "namespaceSelector" (get $e "namespaceSelector") -}}
{{- end -}}
{{- if hasKey $e "podSelector" -}}
{{- $_ := set $p "podSelector" (get $e "podSelector") -}}
{{- end -}}
{{- end -}}
{{- if not $p -}}
{{- fail (printf "networkPolicy: a peer of %s needs `cidr` or `namespaceSelector`/`podSelector`" .what) -}}
{{- end -}}
{{- toJson $p -}}
{{- end -}}

{{/*
Egress rules (one JSON object per line) for one target: entries (its egress list), ports (candidate ports
derived from its URLs; "" = not derivable), protocol, what (for messages), comp (the component asking).
An entry's own `port` wins over the derived ports; an entry with `components` applies only to those.
*/}}
{{- define "xcai.egress.target" -}}
{{- $ctx := . -}}
{{- $applicable := list -}}
{{- range (default (list) .entries) -}}
{{- if or (not (hasKey . "components")) (has $ctx.comp (get . "components")) -}}
{{- $applicable = append $applicable . -}}
{{- end -}}
{{- end -}}
{{- if not $applicable -}}
{{- fail (printf "networkPolicy: %s has no egress entry for %s; add `egress: [{cidr: ..., port: ...}]` (or selectors) to it, or set networkPolicy.enabled=false" .what .comp) -}}
{{- end -}}
{{- range $e := $applicable -}}
{{- $ports := list -}}
{{- if hasKey $e "port" -}}
{{- $ports = list (toString (int (get $e "port"))) -}}
{{- else -}}
{{- range $ctx.ports -}}
{{- if not . -}}
{{- fail (printf "networkPolicy: the port of %s cannot be derived from its URL; set `port` on its egress entries" $ctx.what) -}}
{{- end -}}
{{- $ports = append $ports . -}}
{{- end -}}
{{- end -}}
{{- if not $ports -}}
{{- fail (printf "networkPolicy: %s has no URL to derive a port from; set `port` on its egress entries" $ctx.what) -}}
{{- end -}}
{{- $pl := list -}}
{{- range ($ports | uniq) -}}
{{- $pl = append $pl (dict "port" (int .) "protocol" $ctx.protocol) -}}
{{- end -}}
{{- printf "%s\n" (toJson (dict "to" (list (include "xcai.peer" (dict "entry" $e "what" $ctx.what) | fromJson)) "ports" $pl)) -}}
{{- end -}}
{{- end -}}

{{/*
All egress rules (besides DNS) of one component, one JSON NetworkPolicyEgressRule per line, possibly repeated.
  both gateways:       local registry, repositories, Imaging Document Sources, Patient Demographics
                       Supplier (their URLs' ports),
                       Redis, the audit repository (unless audit.transport is none), the OTLP collector (if set)
  initiating-gateway:  every community with an endpoint (iti38 / iti39 / rad75 / iti55 URL ports),
                       every consumer with replyTo (async responses; replyTo URL ports),
                       its own pods on the SOAP port (hand-over of async responses between replicas)
  responding-gateway:  every community with acceptRequests and replyTo (async responses; replyTo URL ports)
*/}}
{{- define "xcai.egressRules" -}}
{{- $root := .root -}}
{{- $comp := .comp -}}
{{- $d := $root.Values.directory -}}
{{- $local := default (dict) (get $d "local") -}}
{{- $targets := list -}}
{{- range $one := list "registry" "patientDemographicsSupplier" -}}
{{- with (get $local $one) -}}
{{- $targets = append $targets (dict "entries" (get . "egress") "urls" (list (get . "url")) "what" (printf "directory.local.%s" $one)) -}}
{{- end -}}
{{- end -}}
{{- range $listKey := list "repositories" "imagingDocumentSources" -}}
{{- range $i, $r := (default (list) (get $local $listKey)) -}}
{{- $targets = append $targets (dict "entries" (get $r "egress") "urls" (list (get $r "url")) "what" (printf "directory.local.%s[%d] (%s)" $listKey $i (get $r "repositoryUniqueId"))) -}}
{{- end -}}
{{- end -}}
{{- range $i, $c := (default (list) (get $d "communities")) -}}
{{- $what := printf "directory.communities[%d] (%s)" $i (get $c "homeCommunityId") -}}
{{- if eq $comp "initiating-gateway" -}}
{{- $urls := list -}}
{{- $eps := default (dict) (get $c "endpoints") -}}
{{- range $k := list "iti38" "iti39" "rad75" "iti55" -}}
{{- with (get $eps $k) -}}
{{- $urls = append $urls (get . "url") -}}
{{- end -}}
{{- end -}}
{{- if $urls -}}
{{- $targets = append $targets (dict "entries" (get $c "egress") "urls" $urls "what" $what) -}}
{{- end -}}
{{- else -}}
{{- $reply := default (list) (get $c "replyTo") -}}
{{- if and (get $c "acceptRequests") $reply -}}
{{- $targets = append $targets (dict "entries" (get $c "egress") "urls" $reply "what" $what) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* Consent service and break-glass webhook (responding side); OCSP responders (both sides). */ -}}
{{- if ne $comp "initiating-gateway" -}}
{{- with (get (default (dict) (get $d "consent")) "service") -}}
{{- $targets = append $targets (dict "entries" (get . "egress") "urls" (list (get . "url")) "what" "directory.consent.service") -}}
{{- end -}}
{{- with (get (default (dict) (get $d "breakGlass")) "webhook") -}}
{{- $targets = append $targets (dict "entries" (get . "egress") "urls" (list (get . "url")) "what" "directory.breakGlass.webhook") -}}
{{- end -}}
{{- end -}}
{{- range $i, $r := (default (list) (get $d "revocation")) -}}
{{- with (get $r "ocsp") -}}
{{- $targets = append $targets (dict "entries" (get . "egress") "urls" (list (get . "url")) "what" (printf "directory.revocation[%d].ocsp" $i)) -}}
{{- end -}}
{{- end -}}
{{- with (get (index $root.Values (ternary "initiatingGateway" "respondingGateway" (eq $comp "initiating-gateway"))) "tls") -}}
{{- if and (get . "ocspStapling") (get . "ocspEgress") -}}
{{- $targets = append $targets (dict "entries" (get . "ocspEgress") "urls" (list (default "http://ocsp:80" (get . "ocspUrl"))) "what" "tls.ocspUrl") -}}
{{- end -}}
{{- end -}}
{{- if eq $comp "initiating-gateway" -}}
{{- range $i, $c := (default (list) (get $d "consumers")) -}}
{{- $reply := default (list) (get $c "replyTo") -}}
{{- if $reply -}}
{{- $targets = append $targets (dict "entries" (get $c "egress") "urls" $reply "what" (printf "directory.consumers[%d] (%s)" $i (get $c "name"))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $t := $targets -}}
{{- $ports := list -}}
{{- range $t.urls -}}
{{- $ports = append $ports (include "xcai.urlPort" .) -}}
{{- end -}}
{{- include "xcai.egress.target" (dict "entries" $t.entries "ports" $ports "protocol" "TCP" "what" $t.what "comp" $comp) -}}
{{- end -}}
{{- $redisPorts := list -}}
{{- with $root.Values.redis -}}
{{- if .sentinel.hosts -}}
{{- range .sentinel.hosts }}{{ $redisPorts = append $redisPorts (regexFind "[0-9]+$" .) }}{{ end -}}
{{- $redisPorts = append $redisPorts (toString (int .sentinel.dataPort)) -}}
{{- else if .cluster.nodes -}}
{{- range .cluster.nodes }}{{ $redisPorts = append $redisPorts (regexFind "[0-9]+$" .) }}{{ end -}}
{{- else -}}
{{- $redisPorts = list (include "xcai.urlPort" .url) -}}
{{- end -}}
{{- end -}}
{{- include "xcai.egress.target" (dict "entries" $root.Values.redis.egress "ports" ($redisPorts | uniq) "protocol" "TCP" "what" "redis" "comp" $comp) -}}
{{- if ne $root.Values.audit.transport "none" -}}
{{- $auditProto := ternary "UDP" "TCP" (eq $root.Values.audit.transport "udp") -}}
{{- include "xcai.egress.target" (dict "entries" $root.Values.audit.egress "ports" (list (toString (int $root.Values.audit.port))) "protocol" $auditProto "what" "audit" "comp" $comp) -}}
{{- end -}}
{{- if eq $comp "initiating-gateway" -}}
{{- /* Hand-over of async responses to the replica waiting for them (XCAI_INTERNAL_URL, the pod's SOAP port). */ -}}
{{- $self := dict "podSelector" (dict "matchLabels" (include "xcai.selectorLabels" . | fromYaml)) -}}
{{- printf "%s\n" (toJson (dict "to" (list $self) "ports" (list (dict "port" (int .v.containerPorts.soap) "protocol" "TCP")))) -}}
{{- end -}}
{{- if $root.Values.tracing.otlpEndpoint -}}
{{- include "xcai.egress.target" (dict "entries" $root.Values.tracing.egress "ports" (list (include "xcai.urlPort" $root.Values.tracing.otlpEndpoint)) "protocol" "TCP" "what" "tracing.otlpEndpoint" "comp" $comp) -}}
{{- end -}}
{{- end -}}

{{/* Checks that values.schema.json cannot express (and the critical ones it can, for renderers without it). */}}
{{- define "xcai.validate" -}}
{{- $hcid := "^urn:oid:[0-2](\\.(0|[1-9][0-9]*))+$" -}}
{{- $d := .Values.directory -}}
{{- if not (regexMatch $hcid (toString (get $d "homeCommunityId"))) -}}
{{- fail (printf "directory.homeCommunityId %q is not urn:oid:<OID>" (toString (get $d "homeCommunityId"))) -}}
{{- end -}}
{{- $seen := dict -}}
{{- $_ := set $seen (toString (get $d "homeCommunityId")) true -}}
{{- $trustDirs := list -}}
{{- range .Values.trust.secrets -}}
{{- $trustDirs = append $trustDirs (printf "/etc/xcai/trust/%s/" (default .secretName (get . "dir"))) -}}
{{- end -}}
{{- $identities := list -}}
{{- range $i, $c := (default (list) (get $d "communities")) -}}
{{- $id := toString (get $c "homeCommunityId") -}}
{{- if not (regexMatch $hcid $id) -}}
{{- fail (printf "directory.communities[%d].homeCommunityId %q is not urn:oid:<OID>" $i $id) -}}
{{- end -}}
{{- if hasKey $seen $id -}}
{{- fail (printf "directory.communities[%d].homeCommunityId %s is used twice (or is our own)" $i $id) -}}
{{- end -}}
{{- $_ := set $seen $id true -}}
{{- range $k, $ep := (default (dict) (get $c "endpoints")) -}}
{{- if not (hasPrefix "https://" (toString (get $ep "url"))) -}}
{{- fail (printf "directory.communities[%d].endpoints.%s.url must be https:// (no plaintext between communities, R27)" $i $k) -}}
{{- end -}}
{{- end -}}
{{- range (default (list) (get $c "replyTo")) -}}
{{- if not (hasPrefix "https://" (toString .)) -}}
{{- fail (printf "directory.communities[%d].replyTo %q must be https://" $i (toString .)) -}}
{{- end -}}
{{- end -}}
{{- with (get $c "identity") -}}
{{- $identities = append $identities (dict "what" (printf "directory.communities[%d]" $i) "identity" .) -}}
{{- end -}}
{{- end -}}
{{- range $i, $c := (default (list) (get $d "consumers")) -}}
{{- with (get $c "identity") -}}
{{- $identities = append $identities (dict "what" (printf "directory.consumers[%d]" $i) "identity" .) -}}
{{- end -}}
{{- end -}}
{{- range $identities -}}
{{- $what := .what -}}
{{- range (default (list) (get .identity "trustAnchors")) -}}
{{- $path := toString . -}}
{{- $ok := or (eq $path "/etc/xcai/tls/ca.crt") -}}
{{- range $trustDirs -}}
{{- if hasPrefix . $path -}}
{{- $ok = true -}}
{{- end -}}
{{- end -}}
{{- if not $ok -}}
{{- fail (printf "%s.identity.trustAnchors: %s is not under a mounted trust Secret (trust.secrets -> /etc/xcai/trust/<dir>/) nor /etc/xcai/tls/ca.crt" $what $path) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $xua := get $d "xua" -}}
{{- $idpDirs := list -}}
{{- range .Values.trust.idpSecrets -}}
{{- $idpDirs = append $idpDirs (printf "/etc/xcai/xua/%s/" (default .secretName (get . "dir"))) -}}
{{- end -}}
{{- if $xua -}}
{{- range (default (list) (get $xua "idpCertificates")) -}}
{{- $path := toString . -}}
{{- $ok := false -}}
{{- range $idpDirs -}}
{{- if hasPrefix . $path -}}
{{- $ok = true -}}
{{- end -}}
{{- end -}}
{{- if not $ok -}}
{{- fail (printf "directory.xua.idpCertificates: %s is not under a mounted IdP Secret (trust.idpSecrets -> /etc/xcai/xua/<dir>/)" $path) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- range $listKey := list "communities" "consumers" -}}
{{- range $i, $c := (default (list) (get $d $listKey)) -}}
{{- if eq (toString (get $c "xua")) "required" -}}
{{- fail (printf "directory.%s[%d].xua is required but directory.xua (the IdP certificates) is not set" $listKey $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not (has .Values.audit.transport (list "tls" "relp" "udp" "none")) -}}
{{- fail "audit.transport must be tls, relp, udp or none (the gateways always keep an audit trail)" -}}
{{- end -}}
{{- if not (regexMatch "^rediss?://" .Values.redis.url) -}}
{{- fail "redis.url must start with redis:// or rediss://" -}}
{{- end -}}
{{- with .Values.redis -}}
{{- if and .sentinel.hosts .cluster.nodes -}}
{{- fail "redis: set sentinel.hosts or cluster.nodes, not both" -}}
{{- end -}}
{{- $many := or (not (empty .sentinel.hosts)) (not (empty .cluster.nodes)) -}}
{{- range (concat .sentinel.hosts .cluster.nodes) -}}
{{- if not (regexMatch "^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$" .) -}}
{{- fail (printf "redis.sentinel.hosts / redis.cluster.nodes: %q is not host:port" .) -}}
{{- end -}}
{{- end -}}
{{- if and .tls (not $many) -}}
{{- fail "redis.tls is for Sentinel / Cluster mode; with redis.url write rediss://" -}}
{{- end -}}
{{- if and .username (not $many) -}}
{{- fail "redis.username is for Sentinel / Cluster mode; with redis.url write redis://user@host" -}}
{{- end -}}
{{- if and .caSecret (not (ternary .tls (hasPrefix "rediss://" .url) $many)) -}}
{{- fail "redis.caSecret needs TLS to Redis (rediss:// or redis.tls: true): the gateway never falls back to plaintext" -}}
{{- end -}}
{{- end -}}
{{- $root := . -}}
{{- range $key, $comp := (include "xcai.components" . | fromJson) -}}
{{- $c := dict "key" $key "comp" $comp -}}
{{- $v := index $root.Values $key -}}
{{- if $v.enabled -}}
{{- if $v.image.digest -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" $v.image.digest) -}}
{{- fail (printf "%s.image.digest must be sha256:<64 hex>" $c.key) -}}
{{- end -}}
{{- else if $root.Values.global.requireImageDigest -}}
{{- fail (printf "global.requireImageDigest: %s.image.digest is not set" $c.key) -}}
{{- end -}}
{{- if and $v.publicUrl (not (hasPrefix "https://" $v.publicUrl)) -}}
{{- fail (printf "%s.publicUrl must be https://" $c.key) -}}
{{- end -}}
{{- if not (has $v.tls.clientAuth (list "required" "optional")) -}}
{{- fail (printf "%s.tls.clientAuth must be required or optional" $c.key) -}}
{{- end -}}
{{- if and (eq $c.key "respondingGateway") (ne $v.tls.clientAuth "required") -}}
{{- fail "respondingGateway.tls.clientAuth must be required: the community-facing side always uses mutual TLS (R27)" -}}
{{- end -}}
{{- if and (get $v "internalUrl") (not (hasPrefix "https://" (toString (get $v "internalUrl")))) -}}
{{- fail (printf "%s.internalUrl must be https:// (the hand-over runs over mutual TLS)" $c.key) -}}
{{- end -}}
{{- /* The spool holds up to maxSpoolBytes undelivered + retainBytes delivered (+ one 8 MiB segment each). */ -}}
{{- $spool := $v.auditSpool -}}
{{- $volume := ternary $spool.persistence.size $spool.sizeLimit $spool.persistence.enabled -}}
{{- $need := add (int64 $root.Values.audit.maxSpoolBytes) (int64 $root.Values.audit.retainBytes) 16777216 -}}
{{- if gt (int64 $need) (int64 (include "xcai.quantityBytes" $volume)) -}}
{{- fail (printf "%s.auditSpool: the spool volume (%s) is smaller than audit.maxSpoolBytes + audit.retainBytes + 16Mi (%d bytes); an emptyDir over its sizeLimit gets the pod evicted" $c.key (toString $volume) (int64 $need)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
