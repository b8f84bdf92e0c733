// Package cputime reads the CPU time this process has used. Benchmarks
// report it beside wall time: on a shared machine it is the steadier figure.
package cputime
