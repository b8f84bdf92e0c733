// Package server runs mailvault: it opens the archive, serves the management
// API (HTTP JSON under /api/v1) and starts the protocol listeners (IMAP,
// SMTP journal, JMAP), and shuts them down in order. It also holds the
// management API client the command line uses.
package server
