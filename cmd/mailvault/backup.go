package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/mailvault/mailvault/backup"
)

func cmdBackup(ctx context.Context, args []string) error {
	fs := newFlags("backup", "backup -o FILE [-tenant T] [-zstd]")
	cf := addClientFlags(fs)
	out := fs.String("o", "", "write the backup to `FILE` (a tar stream; - for standard output)")
	tenant := fs.String("tenant", "", "back up only this tenant (default: every tenant)")
	compress := fs.Bool("zstd", false, "compress the stream with zstd")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-o FILE is required")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *tenant != "" {
		q.Set("tenant", *tenant)
	}
	if *compress {
		q.Set("compress", "zstd")
	}
	resp, err := c.Raw("GET", "/api/v1/backup?"+q.Encode(), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	var w io.Writer = os.Stdout
	var tmp *os.File
	if *out != "-" {
		tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
		if err != nil {
			return err
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	// The stream is read back as it is written: the file is kept only if
	// it ends with a manifest that matches every entry.
	m, err := backup.Read(io.TeeReader(resp.Body, w), nil)
	if err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return err
		}
		tmp = nil
	}
	report := os.Stdout
	if *out == "-" {
		report = os.Stderr
	}
	if *cf.json {
		enc := json.NewEncoder(report)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	for _, t := range m.Tenants {
		fmt.Fprintf(report, "tenant %s: %d messages (cut at %s, chain tip %s)\n", t.Name, t.Messages, t.At.Format("2006-01-02T15:04:05.000Z"), t.Chain)
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	fmt.Fprintf(report, "%d files, %d bytes of archive; keep master.key apart from the backup (restore needs it)\n", len(m.Files), size)
	return nil
}

func cmdRestore(ctx context.Context, args []string) error {
	fs := newFlags("restore", "restore -i FILE -data DIR -master-key KEYFILE")
	in := fs.String("i", "", "read the backup from `FILE` (- for standard input)")
	dir := fs.String("data", "", "new data `DIR`ectory (must not exist or be empty)")
	keyFile := fs.String("master-key", "", "the saved master.key `FILE` of the backed-up server")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *in == "" || *dir == "" || *keyFile == "" {
		return fmt.Errorf("-i FILE, -data DIR and -master-key FILE are required")
	}
	key, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("read master key: %w", err)
	}
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	m, err := backup.Restore(r, *dir, key)
	if err != nil {
		return err
	}
	for _, t := range m.Tenants {
		fmt.Printf("tenant %s: %d messages restored (cut at %s)\n", t.Name, t.Messages, t.At.Format("2006-01-02T15:04:05.000Z"))
	}
	fmt.Printf("restored into %s; start `mailvault serve` on it (the full-text index is rebuilt), then run `mailvault verify -tenant T` for each tenant\n", *dir)
	return nil
}
