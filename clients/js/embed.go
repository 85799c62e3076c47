// Package jsclient holds Instant's browser client bundles (built from the
// TypeScript sources beside this file), for the token service to serve.
package jsclient

import _ "embed"

// Script is dist/client.js: the script-tag bundle (global Instant).
//
//go:embed dist/client.js
var Script []byte

// Module is dist/client.mjs: the ES module bundle.
//
//go:embed dist/client.mjs
var Module []byte
