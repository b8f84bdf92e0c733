package imapd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
)

// wireFolder archives msgs into alice's folder name and waits for the
// index.
func (f *fixture) wireFolder(t *testing.T, name string, msgs ...string) []archived {
	t.Helper()
	gen := make([]mailgen.Message, len(msgs))
	for i, m := range msgs {
		gen[i] = mailgen.Message{Raw: []byte(m), Date: time.Date(2024, 3, 1, 10, 0, i, 0, time.UTC)}
	}
	out := f.ingest(t, f.acme, "alice@acme.example", name, gen)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.acme.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

func wireMessage(subject, msgID, body string) string {
	return "From: Bob <bob@acme.example>\r\nTo: alice@acme.example\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + msgID + ">\r\nDate: Fri, 01 Mar 2024 10:00:00 +0000\r\n" +
		"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n"
}

// notServerBug fails if a status line blames the server for client input.
func notServerBug(t *testing.T, cmd, status string) {
	t.Helper()
	if strings.Contains(status, "SERVERBUG") || strings.HasPrefix(status, "OK") {
		t.Errorf("%.80s: %s", cmd, status)
	}
}

// TestMalformedInput: malformed client input is the client's error (BAD,
// or NO for a name that cannot be a folder), answered at once.
func TestMalformedInput(t *testing.T) {
	f := newFixture(t, 3, false)
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	for _, cmd := range []string{`SELECT "&"`, `LIST "" "&"`, `STATUS "&Jjo" (MESSAGES)`, `EXAMINE "R&D"`} {
		_, st := c.Do(cmd)
		notServerBug(t, cmd, st)
	}
	// Answered at once, not after the 30 s read timeout.
	start := time.Now()
	if st := c.NO("SELECT {5000}"); !strings.HasPrefix(st, "NO [TOOBIG]") {
		t.Errorf("oversized literal: %s", st)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("oversized literal answered after %v", d)
	}
	c.OK("SELECT INBOX")
	for _, cmd := range []string{
		"FETCH 0 FLAGS", "UID FETCH 0:2 FLAGS", "SEARCH MODSEQ five",
		"SEARCH " + strings.Repeat("NOT ", 200) + "ALL",
		"SEARCH " + strings.Repeat("(", 1200) + "ALL" + strings.Repeat(")", 1200),
		"FETCH 1 BODY.PEEK[4294967296]", "FETCH 1 BODY.PEEK[0]", "FETCH 1 BINARY.PEEK[4294967297]",
	} {
		_, st := c.Do(cmd)
		if !strings.HasPrefix(st, "BAD") {
			t.Errorf("%.80s: %s", cmd, st)
		}
	}
	// A partial fetch with a huge length is the rest of the message.
	u := c.OK("FETCH 1 BODY.PEEK[]<1.9223372036854775807>")
	want := fmt.Sprintf("BODY[]<1> {%d}%s)", len(f.inbox[0].raw)-1, f.inbox[0].raw[1:])
	if len(u) != 1 || !strings.HasSuffix(u[0], want) {
		t.Errorf("partial to the end: %.200q", u)
	}
	c.OK("NOOP")
}

// TestUTF8FolderNames: a folder named with "&" works for a client that
// enables UTF8=ACCEPT (Thunderbird) and for one that does not.
func TestUTF8FolderNames(t *testing.T) {
	f := newFixture(t, 1, false)
	f.wireFolder(t, "R&D", wireMessage("plans", "1@acme.example", "aGVsbG8="))
	f.wireFolder(t, "Grüße", wireMessage("hallo", "2@acme.example", "aGVsbG8="))
	old := dialRaw(t, f.addr)
	old.login("alice@acme.example")
	lines := strings.Join(old.OK(`LIST "" "*"`), "\n")
	if !strings.Contains(lines, `"R&-D"`) || !strings.Contains(lines, `"Gr&APwA3w-e"`) {
		t.Errorf("modified UTF-7 LIST:\n%s", lines)
	}
	old.OK(`SELECT "R&-D"`)
	old.OK(`SELECT "Gr&APwA3w-e"`)

	tb := dialRaw(t, f.addr)
	tb.login("alice@acme.example")
	tb.OK("ENABLE UTF8=ACCEPT")
	lines = strings.Join(tb.OK(`LIST "" "*"`), "\n")
	if !strings.Contains(lines, `"R&D"`) || !strings.Contains(lines, `"Grüße"`) {
		t.Errorf("UTF-8 LIST:\n%s", lines)
	}
	for _, name := range []string{"R&D", "Grüße"} {
		u := tb.OK(`SELECT "` + name + `"`)
		if !strings.Contains(strings.Join(u, "\n"), "* 1 EXISTS") {
			t.Errorf("SELECT %s: %q", name, u)
		}
		tb.OK(`STATUS "` + name + `" (MESSAGES)`)
	}
}

// TestIDAndUnknownCommands: ID names the server, before login too; an
// unknown command before login is answered BAD without ending the
// connection, the third BAD does.
func TestIDAndUnknownCommands(t *testing.T) {
	f := newFixture(t, 1, false)
	c := dialRaw(t, f.addr)
	u := c.OK(`ID ("name" "Thunderbird" "version" "128.0")`)
	if len(u) != 1 || !strings.HasPrefix(u[0], `* ID ("name" "mailvault" "version" "`) {
		t.Errorf("ID: %q", u)
	}
	if caps := c.OK("CAPABILITY"); len(caps) != 1 || !strings.Contains(caps[0]+" ", " ID ") {
		t.Errorf("CAPABILITY: %q", caps)
	}
	if _, st := c.Do("XAPPLEPUSHSERVICE"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("unknown command: %s", st)
	}
	c.login("alice@acme.example")
	c.OK(`ID NIL`)
	c.OK("SELECT INBOX")

	h := dialRaw(t, f.addr)
	for _, l := range []string{"POST / HTTP/1.1", "Host: imap.example", "Content-Length: 3"} {
		fmt.Fprintf(h.Net(), "%s\r\n", l)
	}
	var got []string
	for {
		l := h.Line()
		got = append(got, l)
		if strings.HasPrefix(l, "* BYE") {
			break
		}
	}
	if len(got) != 4 {
		t.Errorf("HTTP request answered %q", got)
	}
}

// TestPartialBinary: a partial BINARY fetch says its origin.
func TestPartialBinary(t *testing.T) {
	f := newFixture(t, 1, false)
	f.wireFolder(t, "Wire", wireMessage("b64", "3@acme.example", "aGVsbG8gd29ybGQ="))
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	c.OK("SELECT Wire")
	u := c.OK("FETCH 1 BINARY.PEEK[1]<6.5>")
	if len(u) != 1 || !strings.Contains(u[0], "BINARY[1]<6> ~{5}world") {
		t.Errorf("partial BINARY: %q", u)
	}
}

// TestSearchSubstrings: search strings without a word and parts of message
// ids match as substrings, as IMAP asks.
func TestSearchSubstrings(t *testing.T) {
	f := newFixture(t, 1, false)
	raws := []string{
		wireMessage("Deal closed!!!", "deal.4711@mx.acme.example", "Qm9keSAhISEgaGVyZQ=="), // "Body !!! here"
		wireMessage("Quarterly report", "report.4712@mx.acme.example", "bm8gcHVuY3R1YXRpb24="),
		wireMessage("Re: Deal closed", "reply.99@other.example", "Pz8/"), // "???"
	}
	msgs := f.wireFolder(t, "Wire", raws...)
	uid := func(i int) uint32 {
		for _, m := range msgs {
			if string(m.raw) == raws[i] {
				return m.uid
			}
		}
		t.Fatalf("message %d not archived", i)
		return 0
	}
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	c.OK("SELECT Wire")
	for _, tc := range []struct {
		key  string
		want []uint32
	}{
		{`SUBJECT "!!!"`, []uint32{uid(0)}},
		{`NOT SUBJECT "!!!"`, []uint32{uid(1), uid(2)}},
		{`HEADER Message-ID "4711@mx"`, []uint32{uid(0)}},
		{`HEADER Message-ID "mx.acme.example"`, []uint32{uid(0), uid(1)}},
		{`HEADER Message-ID "<reply.99@other.example>"`, []uint32{uid(2)}},
		{`HEADER Message-ID "nowhere"`, nil},
		{`OR HEADER Message-ID "reply" SUBJECT "quarterly"`, []uint32{uid(1), uid(2)}},
		{`TEXT "!!!"`, []uint32{uid(0)}},
		{`BODY "=="`, []uint32{uid(0)}}, // bodies are compared as archived
		{`TEXT "?"`, nil},
		{`SUBJECT ":"`, []uint32{uid(2)}},
	} {
		got := searchResult(t, c.OK("UID SEARCH "+tc.key))
		slices.Sort(tc.want)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.key, got, tc.want)
		}
	}
}
