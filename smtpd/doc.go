// Package smtpd is the SMTP journal endpoint: Exchange / Microsoft 365,
// Google Workspace, Postfix and any BCC-journaling server deliver a copy of
// every message here, and each is answered 250 only once the archive holds
// it durably. It translates the wire to backend calls: the journal
// recipient address picks the tenant, the tenant's journal access list
// (AUTH PLAIN logins, allowed networks) decides who may deliver, package
// journal reads the copy's envelope, and Tenant.IngestJournal archives it.
// Every failure that is not the sender's fault is answered 4xx, so that the
// journaling server retries instead of dropping the copy.
package smtpd
