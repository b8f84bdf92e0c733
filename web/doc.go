// Package web is the browser front end of the archive: login, the folder
// tree of the mailboxes a user may read, message lists, search and the
// message view. Pages are rendered on the server from embedded templates;
// every access is checked by backend, as for IMAP and JMAP.
package web
