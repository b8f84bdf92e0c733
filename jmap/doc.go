// Package jmap serves the archive over JMAP (RFC 8620 core, RFC 8621 mail)
// on the HTTP listener: the session resource, the API endpoint, blob
// downloads, EventSource push, and the API tokens scripts use instead of
// passwords. It translates HTTP and JSON into calls on package backend,
// which owns every rule of who may read what. Mount the handler for
// Prefix ("/jmap/") and WellKnownPath ("/.well-known/jmap").
//
// Accounts are archive mailboxes: the user's own is the primary account,
// every other one they may read is a further account (isPersonal false), as
// the IMAP namespaces show them. Ids are ours: account "A<mailbox id>",
// Mailbox "F<folder id>", Email "M<MID>", Thread "T<MID of its first
// message>", blob "B<MID>" (the message) or "B<MID>-<part>" (a body part,
// transfer-decoded). An Email is found only through the account it is in, so
// an id from another account or tenant finds nothing.
//
// Nothing archived can change, so every account says isReadOnly: Email/set
// changes keywords only (the user's own flag overlay, shared with IMAP),
// every other write answers forbidden. Text body values are decoded
// (transfer encoding, quoted-printable's line-end blanks removed as RFC 2045
// 6.7 asks, charset) and have LF line ends (RFC 8621 4.1.4); blobs are the
// bytes as archived.
// Keyword filters and sorts are not supported (unsupportedFilter), nor a
// header filter with a value on a header whose values the index leaves
// out (index.HeaderValueIndexed: Received, Date, Content-Type, ...).
//
// Address properties (from, to, ...) and the Addresses and
// GroupedAddresses header forms come from mailparse's one address parser,
// from the field's last instance: from is header:From:asAddresses.
//
// Threads follow References, In-Reply-To and Message-ID in archive order,
// so thread ids never change. The thread table lives in memory, built from
// the stored summaries at the first request that needs threads (about
// 40 µs of CPU per message) and extended as mail arrives. It is released
// when the tenant closes (about 63 MB at a million messages) and built again
// at the next request that needs it.
//
// States come from the archive's modification sequence and the user's
// keyword log (see state.go). Email/query visits every match in the index,
// except for a newest-first page without calculateTotal, the common case,
// which is searched in growing windows of arrival time (see findNewest).
package jmap
