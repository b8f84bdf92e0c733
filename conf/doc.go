// Package conf owns mailvault's configuration: the built-in defaults that
// let `mailvault serve` start with no file at all, the TOML file that
// overrides them, and MAILVAULT_* environment variables that override both.
package conf
