// Package imapd serves the archive read-only over IMAP (IMAP4rev1 and
// IMAP4rev2, on go-imap v2's imapserver), so that any mail client can mount
// it. It only translates the wire to calls on package backend, which owns
// every rule of who may read what.
//
// Folders: the user's own archive mailbox is the personal namespace (INBOX,
// Sent with \Sent, imported folders); every other archive mailbox the user
// may read is in the shared namespace as Archive/<address>/<folder>, journal
// mailboxes for compliance users only. The prefix Archive/ is reserved for
// them: an own folder whose first level is "Archive" is shown as
// "Archive_" (and "Archive_" as "Archive__", and so on), so an imported
// "Archive/<address>/INBOX" and the shared mailbox of that address are both
// reachable and every name means one folder. Plaintext logins are
// accepted on loopback only; elsewhere the client must use STARTTLS or the
// implicit-TLS port. Failed logins slow down further attempts for the
// account and the client address. Nothing can be created, deleted,
// renamed, appended, copied or moved (NO [CANNOT] with a text for the
// user, never [TRYCREATE]; docs/clients.md lists them); EXPUNGE and CLOSE
// succeed and remove nothing, as no message can carry \Deleted. STORE
// changes the user's own flags (\Seen, \Flagged, \Answered, \Draft,
// keywords), never the archived message; archived mail starts \Seen.
// Every login, folder open, search and message read (ENVELOPE,
// BODYSTRUCTURE, body sections) of a compliance user is written to the
// tenant's audit log, one entry per command.
//
// ID (RFC 2971) answers the server's name and version, in any state.
// Malformed commands are answered BAD (a mailbox name that is not valid
// modified UTF-7: NO), never as a server error; after ENABLE UTF8=ACCEPT
// or IMAP4rev2, folder names are UTF-8 on the wire, "&" included. Before
// login, the third BAD answer ends the connection (a client speaking
// another protocol); see third_party/README.md for these library changes.
//
// ENVELOPE and BODYSTRUCTURE come from the summary stored at ingest, and
// so do the message's header (BODY[HEADER], BODY[HEADER.FIELDS (...)],
// RFC822.HEADER): a FETCH that asks for nothing else reads the stored
// heads in batches, never the messages. A FETCH of BODYSTRUCTURE alone, or
// of one set of header fields (a client's folder list), writes them as
// kept from an earlier FETCH (up to 64 MiB per tenant in memory; those of
// shredded messages are dropped). Other body sections are slices of the
// archived bytes at the offsets recorded there; no FETCH parses a message
// again.
//
// ENVELOPE writes groups as RFC 3501 7.4.2 asks (a start marker naming the
// group, its members, an end marker), source routes in the route field,
// no comments; Sender and Reply-To are From when their fields are absent
// or name nobody.
//
// Messages are presented with CRLF line ends, as IMAP requires and Dovecot
// does: a message archived with bare LFs (mbox and Maildir imports) is
// served with each bare LF as CRLF in BODY[], RFC822, BINARY, every section
// and partial, and counted so in RFC822.SIZE, BODYSTRUCTURE sizes, STATUS
// SIZE and SEARCH LARGER/SMALLER (line counts are the same either way).
// The bare LFs of the message and of each part are counted at ingest, so
// the usual CRLF message costs nothing and the others are converted while
// written, a partial by converting only its window. The archive keeps the
// bytes as they came: verify, export and JMAP blobs serve them unchanged.
//
// SEARCH: sequence numbers, UIDs, internal dates (SINCE, BEFORE, ON, in
// UTC), sizes and flags come from metadata and the user's flags. Text keys
// (FROM, TO, CC, BCC, SUBJECT, BODY, TEXT, HEADER) run on the tenant's
// full-text index, on decoded text (RFC 2047 headers, quoted-printable and
// base64 bodies, charsets), case-insensitively. That is not the substring
// match RFC 9051 describes:
//   - Text is matched by words: the words of the search string must occur
//     in this order, the last one may be the start of a word ("invo" finds
//     "invoice"), but a piece inside a word does not match ("voice" does not
//     find "invoice"), and punctuation between words is ignored.
//   - Address keys (FROM, TO, CC, BCC) match the start of an address, its
//     local part or a piece of it (split at . _ - +), a domain or a
//     parent domain, or a display-name word; "bob@acme.example" and
//     "@acme.example" must match whole. TO and BCC also find the journal's
//     envelope recipients, so BCC finds blind copies the header never
//     showed.
//   - A search string without any word (only punctuation, "!!!") is
//     compared as a substring, as RFC 9051 asks: for header keys in the
//     stored header values, for BODY and TEXT in the message as archived
//     (not decoded), which reads every candidate message. An empty string
//     matches every message (HEADER: every message with the field). Words
//     over 128 bytes are compared by their first 128.
//   - Message-ID, In-Reply-To, References and Resent-Message-ID match
//     substrings ("4711@mx" finds <deal.4711@mx.example>): the index gives
//     the messages with the field, the stored headers decide.
//   - Parts of very large messages (bodies beyond 2 MiB, header values
//     beyond 64 KiB) are not searchable, nor signature headers' values.
//   - The index follows ingest by a moment: a message that has just arrived
//     is found by text keys shortly after it is announced.
//
// SORT and THREAD (RFC 5256; ESORT's RETURN options of RFC 5267) take the
// same search keys and order the hits by keys made once per message from
// its envelope and References and kept while the tenant is open (see
// backend.ThreadKeys): ARRIVAL is the internal date, DATE the Date field's
// (else the internal date), FROM, TO and CC the mailbox of the field's
// first address, SUBJECT the base subject; strings compare as
// i;ascii-casemap. THREAD=ORDEREDSUBJECT and THREAD=REFERENCES follow the
// RFC's algorithms step by step. LITERAL+ (RFC 7888) is offered in every
// state.
//
// SENTSINCE, SENTBEFORE and SENTON compare the Date: field's date in its
// own time zone, as RFC 9051 asks: the index narrows the candidates, the
// stored summary decides near the day boundaries.
package imapd
