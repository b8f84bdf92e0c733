// Package index is the per-tenant full-text index of archived messages, on
// Bluge: one directory per tenant, one document per unique message (its MID)
// carrying its folder memberships, so that a search returns a folder's UIDs
// (IMAP SEARCH) or sorted, paged MIDs over several folders (JMAP
// Email/query), plus RFC 8621 search snippets. It owns the index files and a
// crash watermark; the archived messages stay the source of truth, an index
// can always be rebuilt from them.
//
// Matching. Text (JMAP's filters) matches words; Substring (IMAP SEARCH)
// matches inside words, see vocabulary.go:
//   - Subject, body, attachment names, header values: Unicode words, lower
//     case, NFC; no stemming, no stop words. Text: the last word of a search
//     string also matches as the beginning of a word ("invo" finds
//     "invoice"), a word inside another ("voice") does not. Substring: one
//     word matches anywhere inside a word ("voice" finds "invoice"), as long
//     as the word is at most 48 bytes (longer ones by their start) and the
//     string stands for at most 65,536 words (else word starts).
//   - Several words match as a phrase in subject, attachment names and
//     header values; Text in the body matches when it holds all the words,
//     anywhere (as JMAP snippets highlight them). Substring matches a phrase
//     everywhere, the body included (it has positions): the first word may
//     end a word, the last may start one, within 1,024 words each. What lies
//     between the words is not compared.
//   - Addresses: each search word must match the start of an address term:
//     full address, local part and its pieces split on . _ - +, every domain
//     suffix, display-name words (see addressAnalyzer). A word with "@" must
//     be a whole address or "@domain". The words may match different
//     addresses of the same field. To and Bcc also search the envelope
//     recipients. Substring: each word anywhere inside an address term.
//   - A prefix standing for more than 1024 index terms matches whole words
//     only. 1024 is also bluge's process-wide
//     searcher.DisjunctionMaxClauseCount, which Open sets.
//   - A search string without words matches everything.
//   - Header values are indexed except those HeaderValueIndexed names:
//     signatures and blobs (DKIM-Signature, ARC-Seal, ...), trace headers
//     (Received, Authentication-Results, ...), Date and the MIME structure
//     headers (Content-Type, MIME-Version, ...). Their presence is indexed;
//     Header with a value matches every message that has the header, and
//     the caller checks the value (imapd reads the stored headers; JMAP
//     refuses such a filter). TEXT does not find their words.
//   - Words over 128 bytes count by their first 128. Not indexed: header
//     values beyond 64 KiB, bodies beyond 2 MiB, more than 1000 addresses
//     per field.
//   - Dates are clamped to the years 1900..2200, with one-second resolution.
//     SentDays compares the calendar day of Date: as written in its zone.
//   - Vocabulary documents keep the words of a message after it is deleted
//     (not which message held them) until the index is rebuilt.
//
// Bluge is unmaintained: panics in the calling goroutine (analysis, segment
// building, searching) become errors; a panic in its background merger
// still ends the process.
package index
