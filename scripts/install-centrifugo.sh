#!/usr/bin/env bash
# Installs the Centrifugo server the integration tests and the local stack
# run: v6.9.1, built from the Go module proxy into $(go env GOPATH)/bin
# (about 2 minutes the first time; a no-op when that version is there).
set -euo pipefail

version="v6.9.1"
module="github.com/centrifugal/centrifugo/v6"
bindir="$(go env GOBIN)"
[ -n "$bindir" ] || bindir="$(go env GOPATH)/bin"
bin="$bindir/centrifugo"

if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"; then
  echo "centrifugo $version already installed at $bin"
  exit 0
fi
echo "installing centrifugo $version into $bindir (go install $module@$version)..."
# Build outside the project so its go.mod does not interfere.
(cd "$(mktemp -d)" && go install "$module@$version")
echo "installed $bin"
