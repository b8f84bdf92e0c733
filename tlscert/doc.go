// Package tlscert provides the TLS certificates of mailvault's listeners
// (IMAP, SMTP): a configured pair, or a self-signed pair created in the
// data directory at first start, re-read when an operator replaces it.
package tlscert
