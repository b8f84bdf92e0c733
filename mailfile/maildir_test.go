package mailfile

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// walked is what a test keeps of a Message.
type walked struct {
	Folder, Source, Raw string
	Date                time.Time
	Flags               []string
}

// walkAll walks root, failing on any reported problem, and checks that
// Count agrees.
func walkAll(t *testing.T, root string) []walked {
	t.Helper()
	got, problems := walkReporting(t, root)
	for _, p := range problems {
		t.Errorf("unexpected problem: %s", p)
	}
	return got
}

// walkReporting walks root and returns the messages and the reported
// problems as "source: error", checking that Count agrees with the walk.
func walkReporting(t *testing.T, root string) ([]walked, []string) {
	t.Helper()
	var got []walked
	var problems []string
	var size int64
	err := Walk(context.Background(), root, func(m *Message) error {
		got = append(got, walked{m.Folder, m.Source, string(m.Raw), m.Date, slices.Clone(m.Flags)})
		size += int64(len(m.Raw))
		return nil
	}, func(source string, err error) {
		problems = append(problems, source+": "+err.Error())
	})
	if err != nil {
		t.Fatal(err)
	}
	n, bytes, err := Count(context.Background(), root)
	if err != nil || n != len(got) || bytes != size {
		t.Errorf("Count = %d, %d, %v; Walk gave %d messages, %d bytes", n, bytes, err, len(got), size)
	}
	return got, problems
}

func checkWalked(t *testing.T, root string, got, want []walked) {
	t.Helper()
	if len(got) != len(want) {
		for _, g := range got {
			t.Logf("got %s %q", g.Source, g.Folder)
		}
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		w.Source = filepath.Join(root, filepath.FromSlash(w.Source))
		if g.Folder != w.Folder || g.Source != w.Source || g.Raw != w.Raw ||
			!w.Date.IsZero() && !g.Date.Equal(w.Date) || !slices.Equal(g.Flags, w.Flags) {
			t.Errorf("message %d:\n got %+v\nwant %+v", i+1, g, w)
		}
	}
}

func TestMaildir(t *testing.T) {
	root := t.TempDir()
	msg := func(n int) string {
		return "From: a@example.com\r\nSubject: message " + strings.Repeat("x", n) + "\r\n\r\nBody\r\n"
	}
	date := func(n int) time.Time { return time.Date(2019, 3, n, 10, 0, 0, 0, time.UTC) }
	files := []struct {
		name string
		n    int
	}{
		{"cur/1700000000.M1P1.host,S=100:2,FS", 1},
		{"cur/1700000001.M2P1.host:2,", 2},
		{"new/1700000002.M3P1.host", 3},
		{"cur/1700000004.M5P1.host:2,RSTDPabz", 4},
		{"tmp/1700000003.M4P1.host", 5}, // not delivered yet
		{".Sent/cur/1700000010.M1P2.host:2,S", 6},
		{".Sent/tmp/1700000011.M1P2.host", 7},
		{".Archive.2019/new/1700000020.M1P3.host", 8},
		{".Archive.2019/cur/1700000019.M1P3.host!2,S", 9},
		{".Entw&APw-rfe/cur/1700000030.M1P4.host:2,D", 10},
	}
	for _, f := range files {
		p := writeFile(t, root, f.name, msg(f.n))
		if err := os.Chtimes(p, date(f.n), date(f.n)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, root, "dovecot-keywords", "0 $Junk\n1 Work\nbroken line\n3 in(valid\n")
	writeFile(t, root, "dovecot-uidlist", "3 V1700000000 N5\n")
	writeFile(t, root, "subscriptions", "Sent\nArchive.2019\n")
	writeFile(t, root, ".Sent/maildirfolder", "")
	writeFile(t, root, ".notmuch/xapian/record.glass", "\x00binary")
	writeFile(t, root, "cur/.hidden", "not a message")

	want := []walked{
		{"", "cur/1700000000.M1P1.host,S=100:2,FS", msg(1), date(1), []string{`\Flagged`, `\Seen`}},
		{"", "cur/1700000001.M2P1.host:2,", msg(2), date(2), nil},
		{"", "new/1700000002.M3P1.host", msg(3), date(3), nil},
		{"", "cur/1700000004.M5P1.host:2,RSTDPabz", msg(4), date(4),
			[]string{`\Answered`, `\Seen`, `\Deleted`, `\Draft`, "$Forwarded", "$Junk", "Work"}},
		{"Archive/2019", ".Archive.2019/cur/1700000019.M1P3.host!2,S", msg(9), date(9), []string{`\Seen`}},
		{"Archive/2019", ".Archive.2019/new/1700000020.M1P3.host", msg(8), date(8), nil},
		{"Entwürfe", ".Entw&APw-rfe/cur/1700000030.M1P4.host:2,D", msg(10), date(10), []string{`\Draft`}},
		{"Sent", ".Sent/cur/1700000010.M1P2.host:2,S", msg(6), date(6), []string{`\Seen`}},
	}
	checkWalked(t, root, walkAll(t, root), want)

	// A Maildir++ tree whose root had no messages, and lost its empty cur,
	// new and tmp in an archive, still yields its folders.
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.RemoveAll(filepath.Join(root, sub)); err != nil {
			t.Fatal(err)
		}
	}
	got := walkAll(t, root)
	checkWalked(t, root, got, want[4:])
}

func TestMaildirFlags(t *testing.T) {
	kw := maildirKeywords{0: "$Junk", 2: "Work"}
	tests := []struct {
		name string
		want []string
	}{
		{"1.M1.host:2,S", []string{`\Seen`}},
		{"1.M1.host;2,FS", []string{`\Flagged`, `\Seen`}},
		{"1.M1.host", nil},
		{"1.M1.host:1,S", nil},                                    // experimental info, no flags
		{"1.M1.host2,S", nil},                                     // no separator
		{"1.M1.host:2,abcXS", []string{"$Junk", "Work", `\Seen`}}, // b has no keyword
		{"1.M1.host:2,P", []string{"$Forwarded"}},
	}
	for _, tt := range tests {
		if got := appendMaildirFlags(nil, tt.name, &kw); !slices.Equal(got, tt.want) {
			t.Errorf("flags of %q = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMaildirPlusFolder(t *testing.T) {
	tests := []struct{ dir, want string }{
		{".Sent", "Sent"},
		{".Archive.2019", "Archive/2019"},
		{".Entw&APw-rfe", "Entwürfe"},
		{".Gel&APY-schte Elemente", "Gelöschte Elemente"},
		{".&ZeVnLIqe-", "日本語"},
		{".Tom &- Jerry", "Tom & Jerry"},
		{".&2D3eAA-", "\U0001F600"},         // surrogate pair
		{".bad&APw", "bad&APw"},             // unterminated: kept as is
		{".bad&2D0-", "bad&2D0-"},           // lone surrogate: kept as is
		{".Überweisungen", "Überweisungen"}, // UTF-8 names (Dovecot UTF8)
	}
	for _, tt := range tests {
		if got := maildirPlusFolder(tt.dir); got != tt.want {
			t.Errorf("maildirPlusFolder(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

// FuzzMaildirName feeds file and directory names to the Maildir name
// parsers: flags must be known IMAP flags or keywords, folder names valid
// UTF-8 when the input is.
func FuzzMaildirName(f *testing.F) {
	f.Add("1700000000.M1P1.host,S=100:2,FRS")
	f.Add(".Entw&APw-rfe.Archive&-Old")
	f.Add(".&2D3eAA-")
	f.Add(".&ZeVnLIqe")
	kw := maildirKeywords{0: "$Junk", 25: "Last"}
	allowed := []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, "$Forwarded", "$Junk", "Last"}
	f.Fuzz(func(t *testing.T, name string) {
		for _, flag := range appendMaildirFlags(nil, name, &kw) {
			if !slices.Contains(allowed, flag) {
				t.Fatalf("flags of %q contain %q", name, flag)
			}
		}
		folder := maildirPlusFolder(name)
		if utf8.ValidString(name) && !utf8.ValidString(folder) {
			t.Fatalf("folder of %q is not UTF-8: %q", name, folder)
		}
		if s, ok := decodeModifiedUTF7(name); ok && !utf8.ValidString(s) {
			t.Fatalf("decoding %q gave invalid UTF-8 %q", name, s)
		}
	})
}
