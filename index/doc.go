// Package index is the per-tenant full-text index of archived messages, on
// Bluge: one directory per tenant, one document per unique message (its MID)
// carrying its folder memberships, so a search returns a folder's UIDs (IMAP
// SEARCH) or sorted, paged MIDs over several folders (JMAP Email/query), plus
// RFC 8621 search snippets. It owns the index files and a crash watermark;
// the raw messages stay the source of truth: an index can always be rebuilt.
//
// Matching, and where it deviates from IMAP's substring semantics:
//   - Subject, body, attachment names, header values: Unicode words, lower
//     case, NFC; no stemming, no stop words. A search string matches its words
//     as a phrase, the last word also as the beginning of a word ("invo"
//     finds "invoice"); a word inside another ("voice") does not match.
//     Words over 128 bytes are indexed and searched by their first 128 bytes.
//   - Addresses: each search word must match the start of an address term:
//     full address, local part and its pieces split on . _ - +, every domain
//     suffix, display-name words (see addressAnalyzer). A word with "@" must
//     be a whole address or "@domain". Words may match different addresses of
//     the same field. To and Bcc also search the envelope recipients.
//   - A prefix standing for more than 1024 index terms matches whole words
//     only. 1024 is also bluge's process-wide
//     searcher.DisjunctionMaxClauseCount, which Open sets.
//   - A search string without words matches everything.
//   - Header values of signature and blob headers (DKIM-Signature, ARC-Seal,
//     ...) are not indexed, only their presence; header values beyond 64 KiB
//     per message, bodies beyond 2 MiB, more than 1000 addresses per field are
//     dropped.
//   - Dates are clamped to the years 1900..2200, with one-second resolution.
//
// Bluge runs merges in goroutines of its own: a panic there (a known bluge
// bug) still ends the process; panics in Put and searches become errors.
package index
