package mailfile

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWalkMixedDirectory(t *testing.T) {
	root := t.TempDir()
	const (
		emlLF   = "From: a@example.com\nSubject: no final newline\n\nbody"
		emlCRLF = "From: b@example.com\r\nSubject: crlf\r\n\r\nbody\r\n"
		emlOld  = " From: c@example.com\nSubject: leading blank, as seen in real exports\n\nold\n"
		emlMH   = "Return-Path: <d@example.com>\nX-Weird : obsolete blank before colon\n\tcontinued\n\nMH file\n"
		mbox2   = "From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\n1\n\n" +
			"From b@example.com Tue Jan  2 00:00:00 2024\nSubject: two\n\n2\n\n"
	)
	mtime := time.Date(2020, 5, 17, 8, 0, 0, 0, time.UTC)
	for name, data := range map[string]string{
		"a.eml":                                emlLF,
		"b.EML":                                emlCRLF,
		"notes.txt":                            "Just some notes.\nNothing else.\n",
		"empty.eml":                            "",
		"outlook.msg":                          "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest",
		"Archive/2019.mbox":                    mbox2,
		"Archive/old.eml":                      emlOld,
		"Archive/mh/1":                         emlMH,
		"Local Folders/Inbox":                  utf8BOM + mbox2,
		"Local Folders/Inbox.msf":              "// <!-- <mdb:mork:z v=\"1.4\"/> -->",
		"Local Folders/Inbox.sbd/Sub":          mbox2,
		"Export/Work.mbox/mbox":                mbox2,
		"Export/Work.mbox/table_of_contents":   "\x00\x01",
		"users/alice/Maildir/cur/1.M1.h:2,S":   emlCRLF,
		"users/alice/Maildir/.Sent/new/2.M1.h": emlLF,
		"users/alice/Maildir/dovecot-uidlist":  "3 V1 N2\n",
		".git/config":                          "[core]\n",
		"saved.eml":                            "From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\n1\n",
		"broken.mbox":                          "From a@example.com Mon Jan  1 00:00:00 2024\n\nFrom b@example.com Tue Jan  2 00:00:00 2024\nSubject: two\n\n2\n",
	} {
		p := writeFile(t, root, name, data)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "Archive"), filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}

	one := "Subject: one\n\n1\n"
	two := "Subject: two\n\n2\n"
	jan1, jan2 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	want := []walked{
		{"Archive/2019", "Archive/2019.mbox#1", one, jan1, nil},
		{"Archive/2019", "Archive/2019.mbox#2", two, jan2, nil},
		{"Archive/mh", "Archive/mh/1", emlMH, mtime, nil},
		{"Archive", "Archive/old.eml", emlOld, mtime, nil},
		{"Export/Work", "Export/Work.mbox/mbox#1", one, jan1, nil},
		{"Export/Work", "Export/Work.mbox/mbox#2", two, jan2, nil},
		{"Local Folders/Inbox", "Local Folders/Inbox#1", one, jan1, nil},
		{"Local Folders/Inbox", "Local Folders/Inbox#2", two, jan2, nil},
		{"Local Folders/Inbox/Sub", "Local Folders/Inbox.sbd/Sub#1", one, jan1, nil},
		{"Local Folders/Inbox/Sub", "Local Folders/Inbox.sbd/Sub#2", two, jan2, nil},
		{"", "a.eml", emlLF, mtime, nil},
		{"", "b.EML", emlCRLF, mtime, nil},
		{"broken", "broken.mbox#1", "", jan1, nil},
		{"broken", "broken.mbox#2", two, jan2, nil},
		{"", "empty.eml", "", mtime, nil},
		{"", "saved.eml#1", one, jan1, nil},
		{"users/alice/Maildir", "users/alice/Maildir/cur/1.M1.h:2,S", emlCRLF, mtime, []string{`\Seen`}},
		{"users/alice/Maildir/Sent", "users/alice/Maildir/.Sent/new/2.M1.h", emlLF, mtime, nil},
	}
	got, problems := walkReporting(t, root)
	checkWalked(t, root, got, want)

	wantProblems := []struct {
		source string
		err    error
	}{
		{"loop", nil},
		{"notes.txt", ErrNotMail},
		{"outlook.msg", ErrNotMail},
	}
	if len(problems) != len(wantProblems) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(problems, "\n"), len(wantProblems))
	}
	for i, w := range wantProblems {
		if !strings.HasPrefix(problems[i], filepath.Join(root, w.source)+": ") ||
			w.err != nil && !strings.Contains(problems[i], w.err.Error()) {
			t.Errorf("problem %d = %q, want %s: %v", i, problems[i], w.source, w.err)
		}
	}

	// The order is stable.
	again, _ := walkReporting(t, root)
	if !slices.EqualFunc(got, again, func(a, b walked) bool { return a.Source == b.Source }) {
		t.Error("second walk gave another order")
	}
}

func TestWalkErrors(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.eml", "Subject: a\n\na\n")
	writeFile(t, root, "b.txt", "not mail\n")
	writeFile(t, root, "c.eml", "Subject: c\n\nc\n")
	ctx := context.Background()

	// Without onError the first problem ends the walk.
	var sources []string
	collect := func(m *Message) error { sources = append(sources, filepath.Base(m.Source)); return nil }
	err := Walk(ctx, root, collect, nil)
	if !errors.Is(err, ErrNotMail) || !slices.Equal(sources, []string{"a.eml"}) {
		t.Errorf("nil onError: err %v after %q", err, sources)
	}

	// An error from fn ends the walk and comes back.
	stop := errors.New("stop")
	sources = nil
	err = Walk(ctx, root, func(m *Message) error { collect(m); return stop }, func(string, error) {})
	if !errors.Is(err, stop) || !slices.Equal(sources, []string{"a.eml"}) {
		t.Errorf("fn error: err %v after %q", err, sources)
	}

	// A cancelled context ends the walk.
	cctx, cancel := context.WithCancel(ctx)
	sources = nil
	err = Walk(cctx, root, func(m *Message) error { collect(m); cancel(); return nil }, func(string, error) {})
	if !errors.Is(err, context.Canceled) || !slices.Equal(sources, []string{"a.eml"}) {
		t.Errorf("cancel: err %v after %q", err, sources)
	}

	if err := Walk(ctx, filepath.Join(root, "missing"), collect, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	if _, _, err := Count(ctx, filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Count of missing root: %v", err)
	}

	// An unreadable file is reported and skipped.
	if os.Geteuid() != 0 {
		if err := os.Chmod(filepath.Join(root, "a.eml"), 0); err != nil {
			t.Fatal(err)
		}
		var problems []string
		sources = nil
		err = Walk(ctx, root, collect, func(source string, err error) { problems = append(problems, filepath.Base(source)) })
		if err != nil || !slices.Equal(sources, []string{"c.eml"}) || !slices.Equal(problems, []string{"a.eml", "b.txt"}) {
			t.Errorf("unreadable: err %v, messages %q, problems %q", err, sources, problems)
		}
	}
}

// TestWalkCorpus walks the corpus directory: every message must be found
// as a message file and come back byte for byte.
func TestWalkCorpus(t *testing.T) {
	corpus := corpusDir(t)
	got := walkAll(t, corpus)
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("walked %d messages, the corpus has %d files", len(got), len(entries))
	}
	for i, e := range entries {
		raw, err := os.ReadFile(filepath.Join(corpus, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got[i].Source != filepath.Join(corpus, e.Name()) || !bytes.Equal([]byte(got[i].Raw), raw) || got[i].Folder != "" {
			t.Errorf("%s: walked %s, %d bytes, folder %q; file has %d bytes", e.Name(), got[i].Source, len(got[i].Raw), got[i].Folder, len(raw))
		}
	}
}

// FuzzSniff checks that the file kind never depends on bytes beyond what
// sniff was given, and that a message or mbox head stays one when the file
// goes on.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("From: a@example.com\r\nSubject: x\r\n\r\nbody"))
	f.Add([]byte(utf8BOM + "From a Mon Jan  1 00:00:00 2024\n"))
	f.Add([]byte(" From: x\n\tcont\nX : y\n\n"))
	f.Add([]byte("Just text.\n"))
	f.Add([]byte("X-Mozilla-Status: 0001\r\nX-Weird: x\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, head []byte) {
		for _, named := range []bool{false, true} {
			kind, why := sniff(head, false, named)
			if (kind == kindUnknown) != (why != nil) || errors.Is(why, errUndecided) {
				t.Fatalf("sniff(%q, named %v) = %v, %v", head, named, kind, why)
			}
			if kind != kindUnknown {
				if k, _ := sniff(append(head, "\nmore: x\n"...), true, named); k != kind {
					t.Fatalf("sniff(%q, named %v) = %v, but %v when more follows", head, named, kind, k)
				}
			}
		}
	})
}
