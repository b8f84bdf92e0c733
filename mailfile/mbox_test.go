package mailfile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Three messages as their authors wrote them.
const (
	msgPointOfView = "From: alice@example.com\nTo: bob@example.com\nSubject: first\n\nHello Bob.\n\nFrom my point of view this is fine.\nBye\n"
	msgQuoted      = "From: bob@example.com\nSubject: second\n\nFrom the beginning of a line\n>From an old quote\n>>From deeper\n From not at the start\n>Fromage\n"
	msgTrailing    = "From: carol@example.com\nSubject: third\n\nLast line, then an empty one\n\n"
)

// mboxThree holds them as a careless mboxrd writer stores them: the
// "From my" line is left alone, the quoted lines gain a '>'.
const mboxThree = "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n" +
	"From: alice@example.com\nTo: bob@example.com\nSubject: first\n\nHello Bob.\n\nFrom my point of view this is fine.\nBye\n" +
	"\n" +
	"From alice@example.com Mon Jan  1 00:00:00 2024\n" +
	"From: bob@example.com\nSubject: second\n\n>From the beginning of a line\n>>From an old quote\n>>>From deeper\n From not at the start\n>Fromage\n" +
	"\n" +
	"From bob@example.org Tue Feb 13 09:30:00 2024 +0100\n" +
	"From: carol@example.com\nSubject: third\n\nLast line, then an empty one\n\n" +
	"\n"

type mboxEntry struct {
	raw, fromLine string
}

func readMbox(t testing.TB, r *MboxReader) []mboxEntry {
	t.Helper()
	var got []mboxEntry
	for {
		raw, from, err := r.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, mboxEntry{string(raw), from})
	}
}

func checkEntries(t *testing.T, got, want []mboxEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %q\nwant %q", i+1, got[i], want[i])
		}
	}
}

func TestMboxReader(t *testing.T) {
	want := []mboxEntry{
		{msgPointOfView, "From MAILER-DAEMON Fri Jul  8 12:08:34 2011"},
		{msgQuoted, "From alice@example.com Mon Jan  1 00:00:00 2024"},
		{msgTrailing, "From bob@example.org Tue Feb 13 09:30:00 2024 +0100"},
	}
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	var wantCRLF []mboxEntry
	for _, e := range want {
		wantCRLF = append(wantCRLF, mboxEntry{crlf(e.raw), e.fromLine})
	}
	// Without the separating empty line at the end, the message's own
	// last empty line is taken for it: mbox cannot tell them apart.
	noSeparator := append([]mboxEntry(nil), want...)
	noSeparator[2].raw = strings.TrimSuffix(msgTrailing, "\n")
	noFinalNewline := append([]mboxEntry(nil), want...)
	noFinalNewline[2].raw = strings.TrimSuffix(msgTrailing, "\n\n")

	tests := []struct {
		name string
		mbox string
		want []mboxEntry
	}{
		{"lf", mboxThree, want},
		{"crlf", crlf(mboxThree), wantCRLF},
		{"bom", utf8BOM + mboxThree, want},
		{"no separator at end", strings.TrimSuffix(mboxThree, "\n"), noSeparator},
		{"no final newline", strings.TrimSuffix(mboxThree, "\n\n\n"), noFinalNewline},
		{"leading empty lines", "\n\r\n" + mboxThree, want},
		{"leading data", "not mbox\n\n" + mboxThree, append([]mboxEntry{{"not mbox\n", ""}}, want...)},
		{"empty", "", nil},
		{"from line only", "From - Mon Jan  1 00:00:00 2024", []mboxEntry{{"", "From - Mon Jan  1 00:00:00 2024"}}},
		// At the start of the stream any "From " line separates.
		{"odd first line", "From somebody\nSubject: x\n\nbody\n\n", []mboxEntry{{"Subject: x\n\nbody\n", "From somebody"}}},
		// A From_ line not after an empty line is content.
		{"no empty line before", "From a Mon Jan  1 00:00:00 2024\nx\nFrom b Mon Jan  1 00:00:00 2024\ny\n",
			[]mboxEntry{{"x\nFrom b Mon Jan  1 00:00:00 2024\ny\n", "From a Mon Jan  1 00:00:00 2024"}}},
		{"empty message", "From a Mon Jan  1 00:00:00 2024\n\nFrom b Mon Jan  1 00:00:00 2024\ny\n",
			[]mboxEntry{{"", "From a Mon Jan  1 00:00:00 2024"}, {"y\n", "From b Mon Jan  1 00:00:00 2024"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "test.mbox", tt.mbox)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			checkEntries(t, readMbox(t, NewMboxReader(f)), tt.want)
		})
	}
}

func TestMboxReaderKeepQuotes(t *testing.T) {
	r := NewMboxReader(strings.NewReader(mboxThree))
	r.KeepQuotes = true
	got := readMbox(t, r)
	if len(got) != 3 || !strings.Contains(got[1].raw, "\n>From the beginning of a line\n>>From an old quote\n") {
		t.Fatalf("quotes not kept: %q", got)
	}
}

// TestMboxWalk reads the three messages through Walk, checking folder,
// source and the date of each From_ line.
func TestMboxWalk(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "Archive/2019.mbox", mboxThree)
	type result struct {
		raw, folder, source string
		date                time.Time
	}
	var got []result
	err := Walk(context.Background(), dir, func(m *Message) error {
		got = append(got, result{string(m.Raw), m.Folder, m.Source, m.Date})
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "Archive", "2019.mbox")
	want := []result{
		{msgPointOfView, "Archive/2019", p + "#1", time.Date(2011, 7, 8, 12, 8, 34, 0, time.UTC)},
		{msgQuoted, "Archive/2019", p + "#2", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{msgTrailing, "Archive/2019", p + "#3", time.Date(2024, 2, 13, 8, 30, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].raw != want[i].raw || got[i].folder != want[i].folder || got[i].source != want[i].source || !got[i].date.Equal(want[i].date) {
			t.Errorf("message %d:\n got %+v\nwant %+v", i+1, got[i], want[i])
		}
	}
}

// TestMboxLongLines crosses the reader's buffer inside lines, including a
// quoted From line whose run of '>' is longer than the buffer.
func TestMboxLongLines(t *testing.T) {
	long := strings.Repeat("x", 3*mboxBufSize+17)
	gts := strings.Repeat(">", mboxBufSize+5)
	raw := "Subject: long\n\n" + long + "\n" + gts + "From here\n" + gts + "Fromage\n" + long
	var file bytes.Buffer
	if err := WriteMboxrd(&file, []byte(raw), "a@example.com", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := WriteMboxrd(&file, []byte(raw), "b@example.com", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(file.String(), "\n>"+gts+"From here\n"+gts+"Fromage\n") {
		t.Fatal("WriteMboxrd did not quote the long From line exactly once")
	}
	got := readMbox(t, NewMboxReader(&file))
	if len(got) != 2 || got[0].raw != raw+"\n" || got[1].raw != raw+"\n" {
		t.Fatalf("long lines not read back intact (%d messages)", len(got))
	}
}

func TestParseFromLine(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	valid := []struct {
		line, sender string
		date         time.Time
	}{
		{"From MAILER-DAEMON Fri Jul  8 12:08:34 2011", "MAILER-DAEMON", utc(2011, 7, 8, 12, 8, 34)},
		{"From alice@example.com Mon Jan  1 00:00:00 2024", "alice@example.com", utc(2024, 1, 1, 0, 0, 0)},
		{"From - Mon Jan 01 00:00:00 2024", "-", utc(2024, 1, 1, 0, 0, 0)},
		{"From 1787000000000000000@xxx Tue Jan 16 10:20:30 +0000 2024", "1787000000000000000@xxx", utc(2024, 1, 16, 10, 20, 30)},
		{"From bob Tue Feb 13 09:30:00 2024 +0100", "bob", utc(2024, 2, 13, 8, 30, 0)},
		{"From bob Tue Feb 13 09:30:00 PST 2024", "bob", utc(2024, 2, 13, 17, 30, 0)},
		{"From bob Tue Feb 13 9:30 2024", "bob", utc(2024, 2, 13, 9, 30, 0)},
		{"From bob Tue Feb 13 09:30:00 2024 remote from uucphost", "bob", utc(2024, 2, 13, 9, 30, 0)},
		{`From "john doe"@example.com Sat Mar  2 01:02:03 2024`, `"john doe"@example.com`, utc(2024, 3, 2, 1, 2, 3)},
		{"From  Sat Mar  2 01:02:03 2024", "", utc(2024, 3, 2, 1, 2, 3)},
		{"From bob SAT MAR  2 01:02:03 CEST 2024\r\n", "bob", utc(2024, 3, 1, 23, 2, 3)},
		{"From bob Sat Mar  2 01:02:03 XYZ 2024", "bob", utc(2024, 3, 2, 1, 2, 3)},
		{"From Mon Jan 1 x Sat Mar  2 01:02:03 2024", "Mon Jan 1 x", utc(2024, 3, 2, 1, 2, 3)},
	}
	for _, tt := range valid {
		sender, date, ok := ParseFromLine(tt.line)
		if !ok || sender != tt.sender || !date.Equal(tt.date) {
			t.Errorf("ParseFromLine(%q) = %q, %v, %v; want %q, %v, true", tt.line, sender, date, ok, tt.sender, tt.date)
		}
	}
	invalid := []string{
		"From my point of view this is fine.",
		"From: alice@example.com",
		"from alice Mon Jan  1 00:00:00 2024",
		">From alice Mon Jan  1 00:00:00 2024",
		"From alice Mon Jan  1 2024",
		"From alice Mon Foo  1 00:00:00 2024",
		"From alice Mon Jan 32 00:00:00 2024",
		"From alice Mon Jan  1 25:00:00 2024",
		"From alice Mon Jan  1 00:60:00 2024",
		"From alice Mon Jan  1 00:00:00 24",
		"From alice Mon Jan  1 00:00:00",
		"From alice Mon Jan  1 00:00:00 +2500 2024",
		"From ",
		"",
	}
	for _, line := range invalid {
		if sender, date, ok := ParseFromLine(line); ok {
			t.Errorf("ParseFromLine(%q) = %q, %v, true; want not ok", line, sender, date)
		}
	}
}

func TestWriteMboxrdFromLine(t *testing.T) {
	tests := []struct {
		sender string
		date   time.Time
		want   string
	}{
		{"alice@example.com", time.Date(2024, 1, 1, 1, 0, 0, 0, time.FixedZone("", 3600)), "From alice@example.com Mon Jan  1 00:00:00 2024\n"},
		{"", time.Date(2011, 7, 8, 12, 8, 34, 0, time.UTC), "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n"},
		{"a b\nc", time.Date(2011, 7, 8, 12, 8, 34, 0, time.UTC), "From a_b_c Fri Jul  8 12:08:34 2011\n"},
		{"x", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), "From x Fri Dec 31 23:59:59 9999\n"},
		{"x", time.Time{}, "From x Mon Jan  1 00:00:00 0001\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := WriteMboxrd(&b, []byte("a: b\n"), tt.sender, tt.date); err != nil {
			t.Fatal(err)
		}
		line, _, _ := strings.Cut(b.String(), "a: b\n")
		if line != tt.want {
			t.Errorf("From_ line for %q %v = %q, want %q", tt.sender, tt.date, line, tt.want)
		}
		if _, _, ok := ParseFromLine(line); !ok {
			t.Errorf("written From_ line %q does not parse", line)
		}
	}
}

// TestMboxCorpusRoundTrip writes every corpus message into one mboxrd file
// and reads it back: each message must come back byte for byte (with a
// line ending appended where the original lacked one, which mbox cannot
// represent).
func TestMboxCorpusRoundTrip(t *testing.T) {
	corpus := corpusDir(t)
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	type original struct {
		raw  []byte
		date time.Time
	}
	var originals []original
	mboxPath := filepath.Join(t.TempDir(), "corpus.mbox")
	f, err := os.Create(mboxPath)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	var wantBytes int64
	for i, e := range entries {
		raw, err := os.ReadFile(filepath.Join(corpus, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		date := time.Date(2000+i%30, time.Month(1+i%12), 1+i%28, i%24, i%60, i%60, 0, time.UTC)
		if err := WriteMboxrd(bw, raw, fmt.Sprintf("sender%d@example.com", i), date); err != nil {
			t.Fatal(err)
		}
		originals = append(originals, original{withEOL(raw), date})
		wantBytes += int64(len(withEOL(raw)))
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if len(originals) < 100 {
		t.Fatalf("only %d corpus messages", len(originals))
	}

	n := 0
	err = Walk(context.Background(), mboxPath, func(m *Message) error {
		if n >= len(originals) {
			return fmt.Errorf("more messages than written")
		}
		want := originals[n]
		if !bytes.Equal(m.Raw, want.raw) {
			t.Errorf("%s (%s): %d bytes differ from the original's %d", m.Source, entries[n].Name(), len(m.Raw), len(want.raw))
		}
		if !m.Date.Equal(want.date) {
			t.Errorf("%s: date %v, want %v", m.Source, m.Date, want.date)
		}
		n++
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(originals) {
		t.Fatalf("read %d messages, wrote %d", n, len(originals))
	}
	msgs, size, err := Count(context.Background(), mboxPath)
	if err != nil || msgs != len(originals) || size != wantBytes {
		t.Errorf("Count = %d, %d, %v; want %d, %d", msgs, size, err, len(originals), wantBytes)
	}
}

// FuzzMbox reads arbitrary input as mbox, and writes the messages cut from
// the input at NUL bytes with WriteMboxrd, which must read back unchanged.
// With an odd first byte, '#' stands for a run of '>' longer than the
// reader's buffer.
func FuzzMbox(f *testing.F) {
	f.Add([]byte(mboxThree))
	f.Add([]byte(strings.ReplaceAll(mboxThree, "\n", "\r\n")))
	f.Add([]byte("a: b\n\nFrom x\n\x00>From y\r\n\x00\x00From \n\n>>From \r"))
	f.Add([]byte("\x01#From a\n#Frog\x00#"))
	f.Add([]byte(utf8BOM + "From \n\nFrom a Mon Jan  1 00:00:00 2024\n>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0]&1 == 1 && bytes.Count(data, []byte("#")) <= 3 {
			data = bytes.ReplaceAll(data, []byte("#"), bytes.Repeat([]byte(">"), mboxBufSize+3))
		}

		// Reading and counting agree on arbitrary input.
		r, c := NewMboxReader(bytes.NewReader(data)), NewMboxReader(bytes.NewReader(data))
		total := 0
		for {
			raw, from, err := r.Next()
			size, cfrom, cerr := c.read(false)
			if !errors.Is(err, cerr) || len(raw) != size || from != cfrom {
				t.Fatalf("Next = %d bytes, %q, %v; counting = %d, %q, %v", len(raw), from, err, size, cfrom, cerr)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			total += len(raw) + len(from)
		}
		if total > len(data) {
			t.Fatalf("read %d bytes from %d", total, len(data))
		}

		msgs := bytes.Split(data, []byte{0})
		var file bytes.Buffer
		for i, m := range msgs {
			if err := WriteMboxrd(&file, m, "fuzz@example.com", time.Unix(int64(i)*86400, 0)); err != nil {
				t.Fatal(err)
			}
		}
		got := readMbox(t, NewMboxReader(&file))
		if len(got) != len(msgs) {
			t.Fatalf("wrote %d messages, read %d", len(msgs), len(got))
		}
		for i, m := range msgs {
			if want := withEOL(m); got[i].raw != string(want) {
				t.Fatalf("message %d:\n got %q\nwant %q", i, got[i].raw, want)
			}
			if _, date, ok := ParseFromLine(got[i].fromLine); !ok || !date.Equal(time.Unix(int64(i)*86400, 0)) {
				t.Fatalf("message %d: From_ line %q", i, got[i].fromLine)
			}
		}
	})
}

// FuzzParseFromLine checks that whatever parses can be written back, in
// the writer's format, to the same date and a sender without blanks.
func FuzzParseFromLine(f *testing.F) {
	f.Add("From MAILER-DAEMON Fri Jul  8 12:08:34 2011")
	f.Add("From a b Tue Jan 16 10:20:30 +0000 2024 remote from x")
	f.Add("From bob Sat Mar  2 01:02:03 CEST 2024\r\n")
	f.Add("From my point of view")
	f.Fuzz(func(t *testing.T, line string) {
		sender, date, ok := ParseFromLine(line)
		if !ok {
			return
		}
		if y := date.UTC().Year(); y < 1 || y > 9999 {
			return // clamped on writing
		}
		written := string(appendFromLine(nil, sender, date))
		sender2, date2, ok := ParseFromLine(written)
		if !ok || !date2.Equal(date) || strings.ContainsAny(sender2, " \t") ||
			sender != "" && len(sender2) != len(sender) {
			t.Fatalf("%q parsed as %q %v, written %q, parsed as %q %v %v", line, sender, date, written, sender2, date2, ok)
		}
	})
}

// BenchmarkMbox reads a generated mbox of about 100 MB from disk.
func BenchmarkMbox(b *testing.B) {
	var samples [][]byte
	if dir := corpusDirOrEmpty(b); dir != "" {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, raw)
		}
	}
	if len(samples) == 0 {
		body := strings.Repeat("A line of an ordinary message body, seventy characters or so long.\n", 300)
		samples = append(samples, []byte("From: a@example.com\nSubject: bench\n\n"+body+"\nFrom the start\n"))
	}
	p := filepath.Join(b.TempDir(), "bench.mbox")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	size, count := 0, 0
	for ; size < 100<<20; count++ {
		raw := samples[count%len(samples)]
		if err := WriteMboxrd(bw, raw, "bench@example.com", time.Unix(int64(count), 0)); err != nil {
			b.Fatal(err)
		}
		size += len(raw) + 50
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("Next", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			r := NewMboxReader(f)
			n := 0
			for {
				_, _, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			f.Close()
			if n != count {
				b.Fatalf("read %d messages, wrote %d", n, count)
			}
		}
	})
	b.Run("Walk", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			n := 0
			err := Walk(context.Background(), p, func(*Message) error { n++; return nil }, nil)
			if err != nil || n != count {
				b.Fatalf("Walk: %d messages, %v", n, err)
			}
		}
	})
	b.Run("Count", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			n, _, err := Count(context.Background(), p)
			if err != nil || n != count {
				b.Fatalf("Count: %d messages, %v", n, err)
			}
		}
	})
}
