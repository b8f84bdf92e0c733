// Command mailvault is the e-mail archive server and its administration
// tool. `mailvault serve` runs the server; every other command talks to a
// running server through its management API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the archive server", cmdServe},
		{"config", "config example: print a commented configuration file", cmdConfig},
		{"tenant", "tenant create|list|show|set: manage tenants", cmdTenant},
		{"domain", "domain add: give a tenant another domain", cmdDomain},
		{"user", "user add|list|passwd|delete: manage users", cmdUser},
		{"group", "group add|list|member: manage groups", cmdGroup},
		{"mailbox", "mailbox add|list|alias|grant|revoke: manage archive mailboxes", cmdMailbox},
		{"journal", "journal show|allow|deny|credential: who may journal mail over SMTP", cmdJournal},
		{"dirsync", "dirsync run|profiles|show|put|delete: sync users from LDAP / Active Directory", cmdDirsync},
		{"pull", "pull run|profiles|show|put|delete: archive mail pulled from IMAP mailboxes", cmdPull},
		{"retention", "retention policies|set|history|show|dry-run|delete|run|reports: how long mail is kept, and deletion", cmdRetention},
		{"hold", "hold list|place|lift: legal holds that block every deletion", cmdHold},
		{"import", "import EML files, directories, MBOX and Maildir", cmdImport},
		{"auditor", "auditor add: a time-limited, read-only account scoped to mailboxes and a period", cmdAuditor},
		{"export", "export mailboxes, folders, periods or search results as zipped EML, mbox or a GoBD Z3 package", cmdExport},
		{"signing", "signing show|generate|import: the tenant's certificate that signs Z3 packages", cmdSigning},
		{"stats", "show archive counters", cmdStats},
		{"verify", "re-read every message and check hashes and the hash chain", cmdVerify},
		{"backup", "write a consistent snapshot of the running archive (all tenants or one)", cmdBackup},
		{"restore", "restore a backup into a new data directory", cmdRestore},
		{"reindex", "rebuild a tenant's full-text index from the archived messages", cmdReindex},
		{"reparse", "derive again from the archived messages the summaries an older version wrote", cmdReparse},
		{"audit", "show a tenant's audit log", cmdAudit},
		{"bench", "bench ingest: measure archive throughput on generated mail", cmdBench},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mailvault: open-source e-mail archive\n\nUsage: mailvault <command> [flags] [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `mailvault <command> -help` for a command's flags.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "-help" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name := os.Args[1]
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, os.Args[2:])
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "mailvault %s: %v\n", name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "mailvault: unknown command %q\n\n", name)
	usage(os.Stderr)
	os.Exit(2)
}

// parse parses flags that may stand before, between or after positional
// arguments, and returns the positionals.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlags(name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mailvault %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(level, format string, w io.Writer) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
