//go:build tools

// Package tools records the main packages build.sh compiles, so that go.mod and
// go.sum hold their whole dependency graph. It is never compiled.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
