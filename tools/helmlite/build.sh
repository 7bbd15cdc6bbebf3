#!/usr/bin/env bash
# Builds tools/helmlite (see main.go) from Debian's packages only: golang-go and
# golang-github-masterminds-sprig-dev (which brings semver, yaml.v2 and sprig's other dependencies
# into /usr/share/gocode). GOPATH mode: sprig and semver are imported by their /v3 module paths,
# which the Debian tree does not have, so a private GOPATH links them there.
#   tools/helmlite/build.sh OUT_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_BINARY}
gocode=/usr/share/gocode/src
for d in github.com/Masterminds/sprig github.com/Masterminds/semver gopkg.in/yaml.v2; do
  [ -d "$gocode/$d" ] || { echo "missing $gocode/$d: apt-get install golang-go golang-github-masterminds-sprig-dev" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/github.com/Masterminds/sprig" "$work/src/github.com/Masterminds/semver" "$work/src/helmlite"
ln -s "$gocode/github.com/Masterminds/sprig" "$work/src/github.com/Masterminds/sprig/v3"
ln -s "$gocode/github.com/Masterminds/semver" "$work/src/github.com/Masterminds/semver/v3"
cp "$here/main.go" "$work/src/helmlite/"
mkdir -p "$(dirname "$out")"
(cd "$work/src/helmlite" && GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$work/cache" GOFLAGS=-mod=mod go build -o "$out" .)
