// Package mailparse turns one raw RFC 5322 message, exactly as archived, into
// a protocol-neutral Summary: envelope, MIME structure with byte offsets into
// the raw message, decoded text for the full-text index, attachment names and
// a preview.
//
// The archive computes the Summary once at ingest and stores it (see
// Summary.MarshalBinary), so IMAP FETCH (ENVELOPE, BODYSTRUCTURE,
// BODY[section] via Summary.Section) and JMAP Email/get are served without
// parsing the message again.
//
// Parse never fails: archived mail is often malformed, and whatever cannot be
// understood is reported in Summary.Problems while parsing goes on.
//
// Address fields have one parser, ParseAddresses (RFC 5322 with its
// obsolete forms; groups kept as markers, comments dropped, source routes
// kept apart), which the envelope and JMAP's header forms both use, so that
// IMAP's ENVELOPE and JMAP's from, to, ... and header:To:asAddresses agree.
// Of repeated address fields the last counts, as in JMAP.
package mailparse
