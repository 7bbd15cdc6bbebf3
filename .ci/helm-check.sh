#!/usr/bin/env bash
# Lints and renders the Helm chart helm/xcai-gateway for its default values and for
# examples/full-values.yaml, and validates both renders against the Kubernetes schemas.
#
#   .ci/helm-check.sh [OUT_DIR]        renders are kept in OUT_DIR (default .run/helm)
#
# There is no helm binary on the build machines: the chart is rendered and linted with the project's
# tools/helmlite (Go text/template + sprig like Helm 3), built here once and cached by the hash of its
# sources. helmlite does not validate values.schema.json, nor support subcharts, .Files or hooks (the
# chart uses none of those); the schema is checked by test/unit/helm-schema.test.ts, run at the end,
# and the templates repeat the critical checks with `fail`. Where a real `helm` is on PATH,
# `helm lint --strict` and `helm template` run as well.
# Env: HELMLITE (a prebuilt binary), SKIP_SCHEMA_TEST=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
chart=$root/helm/xcai-gateway
full=$chart/examples/full-values.yaml
out=${1:-$root/.run/helm}
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "helmlite"
if [ -n "${HELMLITE:-}" ]; then
  helmlite=$HELMLITE
else
  src=$root/tools/helmlite
  key=$(cat "$src/main.go" "$src/build.sh" | sha256sum | cut -c1-16)
  helmlite=${XDG_CACHE_HOME:-$HOME/.cache}/xcai-helmlite/$key/helmlite
  if [ ! -x "$helmlite" ]; then
    mkdir -p "$(dirname "$helmlite")"
    "$src/build.sh" "$helmlite.$$.tmp" >/dev/null
    mv "$helmlite.$$.tmp" "$helmlite"
    echo "built $helmlite"
  else
    echo "cached $helmlite"
  fi
fi
echo "note: helmlite stands in for helm (no values.schema.json validation, no subcharts/.Files/hooks)"

# name | helmlite values arguments
cases=("default|" "full|-f $full")
for c in "${cases[@]}"; do
  name=${c%%|*}
  # shellcheck disable=SC2206 # word splitting of the values arguments is intended
  args=(${c#*|})
  step "lint --strict ($name values)"
  "$helmlite" -lint -strict "${args[@]}" "$chart"
  step "render ($name values) -> $out/$name.yaml"
  "$helmlite" -name xcai -namespace xcai "${args[@]}" "$chart" >"$out/$name.yaml"
  grep -E '^kind: ' "$out/$name.yaml" | sort | uniq -c
  step "k8s-validate ($name values)"
  (cd "$root" && node tools/k8s-validate.js "$out/$name.yaml")
done

step "guards: values the chart must refuse"
refuse() {
  local why=$1
  shift
  if "$helmlite" "$@" "$chart" >/dev/null 2>"$out/refused.err"; then
    echo "FAIL: rendered although $why" >&2
    exit 1
  fi
  echo "refused ($why): $(sed -e 's/.*error calling fail: //' "$out/refused.err" | head -n 1)"
}
refuse "directory.homeCommunityId is not urn:oid:" -set directory.homeCommunityId=1.2.3
refuse "the responding gateway would accept clients without certificates" -set respondingGateway.tls.clientAuth=optional
refuse "the image is not pinned by digest" -set global.requireImageDigest=true
refuse "the audit trail would be turned off" -set audit.transport=off
refuse "the audit spool volume is smaller than maxSpoolBytes + retainBytes" -set initiatingGateway.auditSpool.sizeLimit=128Mi

if command -v helm >/dev/null; then
  step "helm lint --strict / helm template (real helm found)"
  helm lint --strict "$chart"
  helm lint --strict -f "$full" "$chart"
  helm template xcai "$chart" -n xcai -f "$full" >"$out/full.helm.yaml"
fi

if [ "${SKIP_SCHEMA_TEST:-}" != 1 ]; then
  step "values.schema.json (test/unit/helm-schema.test.ts)"
  (cd "$root" && npx --no-install jest --runTestsByPath test/unit/helm-schema.test.ts --silent)
fi

step "helm-check OK"
