// Package backend holds mailvault's rules: the provider and its tenants,
// users, groups, archive mailboxes with their addresses and grants, folders
// with IMAP-stable UIDs, the single ingest pipeline every intake goes through
// (hash, dedup, parse, seal, assign, group commit, index), the hash chain that
// makes the archive tamper-evident, verification, and who may read what.
// It speaks no protocol: imapd, smtpd, jmap and the management API translate
// their wire formats into calls on this package.
package backend
