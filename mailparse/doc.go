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
package mailparse
