// Package journal reads what a journaling mail server says about the copy it
// sends to the archive: which message it is, who sent it and who received it.
//
// Two shapes exist. Exchange and Microsoft 365 send an envelope journal
// report ([MS-XJRNL]): a wrapper naming sender and every envelope recipient
// (Bcc and expanded distribution lists included) with the original attached
// unaltered as message/rfc822; Parse finds that attachment byte-exact.
// Google Workspace, Postfix and plain BCC journaling send the original
// itself; recipients then come from delivery headers and from journal
// addresses that encode them (ParseAddress).
//
// The package only reads; it never fails on bad input, since a journaled
// message must be archived whatever it looks like. A report that is cut off
// (its boundary never closes) yields no original, only Copy.Problem: the
// cut attachment must not pass for the message.
package journal
