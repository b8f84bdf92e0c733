package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server"
)

func cmdExport(ctx context.Context, args []string) error {
	fs := newFlags("export", "export -tenant T (-mailbox ADDRESS... | -all | -auditor LOGIN) [-folder NAME] [-since DATE] [-until DATE] [-text|-from|-to|-subject WORDS] [-format eml|mbox|z3] -o FILE")
	cf := addClientFlags(fs)
	tenant := fs.String("tenant", "", "tenant name (required)")
	var mailboxes multiFlag
	fs.Var(&mailboxes, "mailbox", "archive mailbox to export (repeatable)")
	all := fs.Bool("all", false, "export every archive mailbox of the tenant")
	auditor := fs.String("auditor", "", "export the scope (mailboxes and period) of this auditor account")
	folder := fs.String("folder", "", "only this folder (e.g. INBOX, Projects/2023)")
	since := fs.String("since", "", "only messages received at or after this date (YYYY-MM-DD or RFC 3339)")
	until := fs.String("until", "", "only messages received before this date")
	text := fs.String("text", "", "only messages containing these words anywhere")
	from := fs.String("from", "", "only messages from this sender (address or words)")
	to := fs.String("to", "", "only messages to this recipient")
	subject := fs.String("subject", "", "only messages with these words in the subject")
	format := fs.String("format", "eml", "eml (a ZIP of .eml files in mailbox/folder/), mbox (mboxrd) or z3 (GoBD data carrier: EML, index.xml, CSV, signed manifest)")
	out := fs.String("o", "", "file to write (required; - for standard output); written as FILE.part and renamed when complete")
	asUser := fs.String("user", "", "export as this admin or compliance user (password from $MAILVAULT_PASSWORD) instead of with the provider token")
	quiet := fs.Bool("quiet", false, "no progress line")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *tenant == "" || *out == "" {
		return fmt.Errorf("-tenant and -o are required (see -help)")
	}
	f, err := backend.ParseExportFormat(*format)
	if err != nil {
		return err
	}
	scope := backend.ExportScope{Auditor: *auditor, Mailboxes: mailboxes, All: *all, Folder: *folder, Text: *text, From: *from, To: *to, Subject: *subject}
	if scope.Since, err = server.ParseExportTime(*since); err != nil {
		return fmt.Errorf("-since: %w", err)
	}
	if scope.Until, err = server.ParseExportTime(*until); err != nil {
		return fmt.Errorf("-until: %w", err)
	}
	if !scope.All && len(scope.Mailboxes) == 0 && scope.Auditor == "" {
		return fmt.Errorf("name the archive mailboxes with -mailbox, or -all, or -auditor")
	}
	c, err := exportClient(cf, *asUser)
	if err != nil {
		return err
	}
	resp, err := c.Raw("GET", tenantPath(*tenant, "export")+"?"+server.ExportQuery(scope, f).Encode(), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	total, _ := strconv.Atoi(resp.Header.Get(server.ExportMessagesHeader))

	var counter interface {
		io.Writer
		count() int
	}
	if f == backend.ExportMbox {
		counter = &mboxCount{}
	} else {
		counter = &zipCount{ZipStreamCounter: backend.ZipStreamCounter{Suffix: ".eml"}}
	}
	prog := newExportProgress(os.Stderr, total, *quiet)
	prog.counter = counter.count
	body := io.TeeReader(resp.Body, io.MultiWriter(counter, prog))
	start := time.Now()
	var n int64
	if *out == "-" {
		n, err = io.Copy(os.Stdout, body)
	} else {
		n, err = writeAtomically(*out, body)
	}
	prog.finish(n)
	if err != nil {
		return fmt.Errorf("export broken off after %d of %d messages (%s): %w; run the command again to restart it", counter.count(), total, humanBytes(n), err)
	}
	el := time.Since(start)
	fmt.Fprintf(os.Stderr, "export finished in %s: %d messages, %s, %.1f MB/s\n", el.Round(time.Millisecond), counter.count(), humanBytes(n), float64(n)/1e6/max(el.Seconds(), 1e-3))
	return nil
}

type zipCount struct{ backend.ZipStreamCounter }

func (z *zipCount) count() int { return z.Entries }

type mboxCount struct{ backend.MboxStreamCounter }

func (m *mboxCount) count() int { return m.Messages }

func exportClient(cf clientFlags, asUser string) (*server.Client, error) {
	if asUser == "" {
		return cf.client()
	}
	pw := os.Getenv("MAILVAULT_PASSWORD")
	if pw == "" {
		return nil, fmt.Errorf("-user needs the password in $MAILVAULT_PASSWORD")
	}
	cf.token = new(string)
	*cf.token = "-" // no provider token is needed or sent
	c, err := cf.client()
	if err != nil {
		return nil, err
	}
	c.Token, c.User, c.Password = "", asUser, pw
	return c, nil
}

// writeAtomically writes r to path.part, syncs it and renames it to path,
// so that path only ever holds a complete export. A broken-off run leaves
// path.part, which the next run truncates and writes again.
func writeAtomically(path string, r io.Reader) (int64, error) {
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := os.Rename(part, path); err != nil {
		return n, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return n, nil
}

func humanBytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// exportProgress prints messages, bytes and rate on one line: redrawn on
// a terminal, every few seconds otherwise.
type exportProgress struct {
	w       io.Writer
	total   int
	quiet   bool
	tty     bool
	start   time.Time
	last    time.Time
	n       int64
	counter func() int
}

func newExportProgress(w *os.File, total int, quiet bool) *exportProgress {
	tty := false
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	return &exportProgress{w: w, total: total, quiet: quiet, tty: tty, start: time.Now(), last: time.Now()}
}

func (p *exportProgress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	every := 2 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if !p.quiet && p.counter != nil && time.Since(p.last) >= every {
		p.last = time.Now()
		p.print()
	}
	return len(b), nil
}

func (p *exportProgress) print() {
	el := max(time.Since(p.start).Seconds(), 1e-3)
	line := fmt.Sprintf("export: %d/%d messages  %s  %.1f MB/s  %.0f msg/s", p.counter(), p.total, humanBytes(p.n), float64(p.n)/1e6/el, float64(p.counter())/el)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s ", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *exportProgress) finish(n int64) {
	p.n = n
	if p.quiet {
		return
	}
	p.print()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
