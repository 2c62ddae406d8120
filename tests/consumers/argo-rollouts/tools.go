//go:build tools

// Package tools records the main package ../build.sh compiles, so that go.mod
// and go.sum hold its whole dependency graph. It is never compiled.
package tools

import (
	_ "github.com/argoproj/argo-rollouts/cmd/rollouts-controller"
)
