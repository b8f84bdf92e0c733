// Package tests holds mailvault's end-to-end tests: they build the real
// `mailvault` binary, run it as a separate process on loopback ports with a
// private data directory, and drive it the way an operator and mail clients
// do — the command line, the management API, kill -9 and restart.
package tests
