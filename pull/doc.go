// Package pull archives mail that was never journaled by pulling it from
// the users' mailboxes on another server (IMAP): profiles per tenant,
// incremental runs by UIDVALIDITY and the last archived UID of every
// folder, a schedule, and the management API. Every pulled message goes
// through backend.Tenant.IngestInTurn, the path of the import.
package pull
