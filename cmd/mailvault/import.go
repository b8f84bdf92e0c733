package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailfile"
	"github.com/mailvault/mailvault/server"
)

func cmdImport(ctx context.Context, args []string) error {
	fs := newFlags("import", "import -tenant T [-mailbox ADDRESS] [-folder NAME] PATH... (EML, MBOX, Maildir, Outlook PST/OST)")
	cf := addClientFlags(fs)
	tenant := fs.String("tenant", "", "tenant name (required)")
	mailbox := fs.String("mailbox", "", "archive mailbox to import into, keeping the source's folders (default: assign each message by its addresses)")
	folder := fs.String("folder", "", "put every message into this folder of -mailbox instead of the source's folder names")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *tenant == "" || len(pos) == 0 {
		return fmt.Errorf("usage: mailvault import -tenant T [-mailbox ADDRESS] PATH... (-tenant and at least one path are required)")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if *mailbox != "" {
		// Before reading any file: a misspelt mailbox is one error.
		if err := checkMailbox(c, *tenant, *mailbox); err != nil {
			return err
		}
	}
	// Outlook files are converted to folders of EML files first.
	for i, p := range pos {
		if !isPST(p) {
			continue
		}
		tmp, err := os.MkdirTemp("", "mailvault-pst-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if pos[i], err = convertPST(ctx, p, tmp, os.Stdout); err != nil {
			return err
		}
	}
	var total int
	var totalBytes int64
	for _, p := range pos {
		n, b, err := mailfile.Count(ctx, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		total += n
		totalBytes += b
	}
	q := url.Values{}
	if *mailbox != "" {
		q.Set("mailbox", *mailbox)
	}
	pr, pw := io.Pipe()
	var (
		mu       sync.Mutex
		failures []string
		sources  []string // by record number, for error messages
	)
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		var err error
		for _, p := range pos {
			err = mailfile.Walk(ctx, p, func(m *mailfile.Message) error {
				f := m.Folder
				if *folder != "" {
					f = *folder
				}
				mu.Lock()
				sources = append(sources, m.Source)
				mu.Unlock()
				return server.WriteBatchRecord(bw, server.BatchRecord{Folder: f, Date: m.Date, Raw: m.Raw})
			}, func(source string, err error) {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %v", source, err))
				mu.Unlock()
			})
			if err != nil {
				break
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	resp, err := c.Raw("POST", tenantPath(*tenant, "import")+"?"+q.Encode(), "application/x-mailvault-batch", pr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	start := time.Now()
	var archived, dups, failed, unmatched, done int
	var bytesDone int64
	dec := json.NewDecoder(resp.Body)
	progress := newProgress(os.Stderr, total, totalBytes, *quiet)
	for {
		var r server.ImportResult
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("import interrupted after %d messages (re-run the same command: it skips what is archived): %w", done, err)
		}
		if r.N == 0 {
			return fmt.Errorf("import stopped by the server after %d messages: %s", done, r.Error)
		}
		done++
		bytesDone += r.Size
		switch {
		case r.Error != "":
			failed++
			mu.Lock()
			src := fmt.Sprintf("message %d", r.N)
			if r.N-1 < len(sources) {
				src = sources[r.N-1]
			}
			failures = append(failures, fmt.Sprintf("%s: %s", src, r.Error))
			mu.Unlock()
		case r.Duplicate && len(r.Placed) == 0:
			dups++
		default:
			archived++
		}
		if r.Unmatched {
			unmatched++
		}
		progress.update(done, bytesDone)
	}
	progress.finish()
	el := time.Since(start)
	fmt.Printf("import finished in %s: %d archived, %d already archived (duplicates), %d failed, %.0f messages/s\n",
		el.Round(time.Millisecond), archived, dups, len(failures), float64(done)/max(el.Seconds(), 1e-3))
	if *mailbox == "" {
		fmt.Printf("%d matched no archive mailbox and are kept in the journal mailbox only\n", unmatched)
	}
	if len(failures) > 0 {
		sort.Strings(failures)
		fmt.Println("failed:")
		for _, f := range failures {
			fmt.Println("  " + f)
		}
		return fmt.Errorf("%d message(s) not imported", len(failures))
	}
	return nil
}

// progress draws a one-line progress bar with rate and ETA on a terminal,
// and a plain line every few seconds otherwise (logs, CI).
type progress struct {
	w          io.Writer
	total      int
	totalBytes int64
	quiet      bool
	tty        bool
	start      time.Time
	last       time.Time
}

func newProgress(w io.Writer, total int, totalBytes int64, quiet bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, total: total, totalBytes: totalBytes, quiet: quiet, tty: tty, start: time.Now(), last: time.Now()}
}

func (p *progress) update(done int, bytes int64) {
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if p.quiet || time.Since(p.last) < every && done != p.total {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	rate := float64(done) / max(el, 1e-3)
	frac := 0.0
	if p.total > 0 {
		frac = min(float64(done)/float64(p.total), 1)
	}
	eta := "?"
	if rate > 0 && p.total >= done {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	line := fmt.Sprintf("%d/%d messages  %.1f/%.1f MB  %.0f msg/s  ETA %s", done, p.total, float64(bytes)/1e6, float64(p.totalBytes)/1e6, rate, eta)
	if !p.tty {
		fmt.Fprintln(p.w, "import: "+line)
		return
	}
	const width = 30
	bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
	fmt.Fprintf(p.w, "\r[%s] %s ", bar, line)
}

func (p *progress) finish() {
	if !p.quiet && p.tty {
		fmt.Fprintln(p.w)
	}
}

// checkMailbox fails unless the tenant has an archive mailbox with the
// address (or alias) addr.
func checkMailbox(c *server.Client, tenant, addr string) error {
	want, err := backend.NormalizeAddress(addr)
	if err != nil {
		return fmt.Errorf("-mailbox: %w", err)
	}
	var mbs []backend.Mailbox
	if err := c.Do("GET", tenantPath(tenant, "mailboxes"), nil, &mbs); err != nil {
		return err
	}
	for _, mb := range mbs {
		if slices.Contains(mb.Addresses(), want) {
			return nil
		}
	}
	return fmt.Errorf("tenant %s has no archive mailbox %s (see `mailvault mailbox list -tenant %s`)", tenant, want, tenant)
}
