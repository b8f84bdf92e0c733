// Package mailfile reads the mail files an administrator imports into the
// archive: single message files (.eml), directories of them, mbox files and
// Maildir (including Maildir++) trees. It yields each message's bytes exactly
// as stored, with the folder it came from, its flags and a date to use as
// INTERNALDATE. It also writes mboxrd for tests and exports.
//
// It owns nothing else: parsing messages and storing them belong to other
// packages.
package mailfile
