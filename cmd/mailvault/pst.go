package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// isPST says whether an import path is an Outlook data file.
func isPST(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	fi, err := os.Stat(p)
	return (ext == ".pst" || ext == ".ost") && err == nil && fi.Mode().IsRegular()
}

// convertPST converts an Outlook PST or OST file with libpst's readpst
// into a directory tree of EML files, one directory per Outlook folder,
// and returns the directory to import (the caller removes tmp). readpst's
// summary lines ("Inbox" - 12 items done, 0 items skipped) go to report.
func convertPST(ctx context.Context, file, tmp string, report io.Writer) (string, error) {
	bin, err := exec.LookPath("readpst")
	if err != nil {
		return "", fmt.Errorf("%s: importing PST/OST files needs readpst (Debian/Ubuntu: apt-get install pst-utils)", file)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	// -e: one MIME file per message with an .eml extension, in a directory
	// per folder; -b: no RTF body attachments (the body is converted);
	// -8: UTF-8 bodies where Outlook has them; -D: deleted items too (they
	// are mail the owner had).
	cmd := exec.CommandContext(ctx, bin, "-e", "-b", "-8", "-D", "-o", tmp, abs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.Contains(l, "items done") {
			fmt.Fprintf(report, "readpst %s: %s\n", filepath.Base(file), l)
		}
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			// readpst reports a file it cannot open on standard output.
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			msg = lines[len(lines)-1]
		}
		return "", fmt.Errorf("readpst %s: %w: %s", file, err, msg)
	}
	// readpst numbers a folder's messages 1.eml, 2.eml, ... in the
	// file's order; padded, name order is that order (and the UIDs').
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if n, err := strconv.Atoi(strings.TrimSuffix(d.Name(), ".eml")); err == nil && strings.HasSuffix(d.Name(), ".eml") {
			return os.Rename(p, filepath.Join(filepath.Dir(p), fmt.Sprintf("%09d.eml", n)))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("readpst output: %w", err)
	}
	// The file's root folder ("Outlook Data File", "Personal Folders") is
	// not a folder of the mailbox: its subfolders are.
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return "", err
	}
	if len(entries) == 1 && entries[0].IsDir() {
		return filepath.Join(tmp, entries[0].Name()), nil
	}
	return tmp, nil
}
