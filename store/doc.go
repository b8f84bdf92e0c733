// Package store owns bytes on disk: the sealed (compressed, encrypted)
// content-addressed blob store behind a small interface, the per-tenant data
// keys wrapped by the master key, the append-only sealed record log for
// per-message summaries, the buntdb metadata files, and the data directory
// lock. It knows nothing of users, tenants or mail semantics.
package store
