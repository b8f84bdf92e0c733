package backend

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailfile"
)

// TestZipWriterZip64 writes more entries than the classic ZIP end record
// can count: archive/zip and Info-ZIP's unzip read every entry back.
func TestZipWriterZip64(t *testing.T) {
	n := 70000
	if testing.Short() {
		n = 66000
	}
	path := filepath.Join(t.TempDir(), "big.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, err := newZipWriter(f, true)
	if err != nil {
		t.Fatal(err)
	}
	mod := time.Date(2023, 5, 6, 7, 8, 10, 0, time.UTC)
	for i := range n {
		data := fmt.Appendf(nil, "entry %d %s", i, strings.Repeat("x", i%200))
		if err := zw.add(fmt.Sprintf("d%d/ü%d.eml", i%7, i), mod, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != n {
		t.Fatalf("%d entries read, %d written", len(zr.File), n)
	}
	for _, i := range []int{0, 1, 65535, 65536, n - 1} {
		zf := zr.File[i]
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := fmt.Sprintf("entry %d %s", i, strings.Repeat("x", i%200))
		if err != nil || string(got) != want || zf.Name != fmt.Sprintf("d%d/ü%d.eml", i%7, i) || !zf.Modified.Equal(mod) {
			t.Errorf("entry %d: %q %q %v %v", i, zf.Name, got, zf.Modified, err)
		}
	}
	if _, err := exec.LookPath("unzip"); err == nil {
		out, err := exec.Command("unzip", "-tq", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No errors") {
			t.Errorf("unzip -t: %v\n%s", err, out)
		}
	}
	// The stream counter sees every entry, whatever the chunking.
	raw, _ := os.ReadFile(path)
	var c ZipStreamCounter
	for off := 0; off < len(raw); off += 777 {
		c.Write(raw[off:min(off+777, len(raw))])
	}
	if c.Entries != n {
		t.Errorf("stream counter: %d entries, want %d", c.Entries, n)
	}
}

// TestExportScopes exports a folder, a mailbox, a date range and a search
// as zipped EML and as mboxrd: each holds exactly the messages of its
// scope, byte for byte, and each export is audited.
func TestExportScopes(t *testing.T) {
	ctx := context.Background()
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "bob@acme.example", Password: "pw-bob-long", Mailbox: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "carol@acme.example", Password: "pw-carol-long", Roles: []Role{RoleCompliance}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "dave@acme.example", Password: "pw-dave-long"}); err != nil {
		t.Fatal(err)
	}
	type msg struct {
		raw      []byte
		mailbox  string
		folder   string
		received time.Time
	}
	var msgs []msg
	add := func(mailbox, folder, subject string, day int, body string) {
		raw := fmt.Appendf(nil, "From: x@partner.example\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\n%s", mailbox, subject, body)
		rec := time.Date(2023, 1, day, 10, 0, 0, 0, time.UTC)
		if _, err := tn.Ingest(ctx, raw, Source{Mailbox: mailbox, Folder: folder, Received: rec}); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg{raw, mailbox, folder, rec})
	}
	add("alice@acme.example", "INBOX", "invoice 1", 2, "From the start\r\nline\r\n>From quoted\r\n")
	add("alice@acme.example", "INBOX", "lunch", 3, "no newline at the end")
	add("alice@acme.example", "Projects/2023", "invoice 2", 20, "body\r\n")
	add("alice@acme.example", "Archiv: alt", "odd folder", 21, "body\r\n")
	add("bob@acme.example", "INBOX", "invoice 3", 4, "bob's\r\n")
	if err := tn.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	subjects := func(ms []msg) []string {
		var out []string
		for _, m := range ms {
			out = append(out, string(m.raw))
		}
		return out
	}
	pick := func(keep func(m msg) bool) []msg {
		var out []msg
		for _, m := range msgs {
			if keep(m) {
				out = append(out, m)
			}
		}
		return out
	}
	cases := []struct {
		name  string
		scope ExportScope
		want  []msg
	}{
		{"mailbox", ExportScope{Mailboxes: []string{"alice@acme.example"}}, pick(func(m msg) bool { return m.mailbox == "alice@acme.example" })},
		{"folder", ExportScope{Mailboxes: []string{"alice@acme.example"}, Folder: "Projects/2023"}, pick(func(m msg) bool { return m.folder == "Projects/2023" })},
		{"period", ExportScope{All: true, Since: time.Date(2023, 1, 3, 0, 0, 0, 0, time.UTC), Until: time.Date(2023, 1, 21, 0, 0, 0, 0, time.UTC)},
			pick(func(m msg) bool { return m.received.Day() >= 3 && m.received.Day() < 21 })},
		{"search", ExportScope{All: true, Subject: "invoice"}, pick(func(m msg) bool { return strings.Contains(string(m.raw), "invoice") })},
	}
	for _, c := range cases {
		// Zipped EML: the folder structure, the archived bytes.
		var buf bytes.Buffer
		res, err := tn.Export(ctx, ExportRequest{Scope: c.scope, Format: ExportEML, Actor: "provider"}, &buf)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for _, f := range zr.File {
			rc, _ := f.Open()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(b))
			if strings.Contains(f.Name, "..") || !strings.HasSuffix(f.Name, ".eml") {
				t.Errorf("%s: entry name %q", c.name, f.Name)
			}
		}
		if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(subjects(c.want))) || res.Messages != len(c.want) {
			t.Errorf("%s (zip): got %d messages %q, want %q", c.name, res.Messages, got, subjects(c.want))
		}
		// mboxrd: read back with the importer's reader.
		buf.Reset()
		if _, err := tn.Export(ctx, ExportRequest{Scope: c.scope, Format: ExportMbox, Actor: "provider"}, &buf); err != nil {
			t.Fatal(err)
		}
		var mc MboxStreamCounter
		for off := 0; off < buf.Len(); off += 3 {
			mc.Write(buf.Bytes()[off:min(off+3, buf.Len())])
		}
		if mc.Messages != len(c.want) {
			t.Errorf("%s: mbox stream counter %d, want %d", c.name, mc.Messages, len(c.want))
		}
		mr := mailfile.NewMboxReader(&buf)
		got = got[:0]
		for {
			raw, _, err := mr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(raw))
		}
		// Exact, except that an mbox message ends with a line ending.
		var want []string
		for _, s := range subjects(c.want) {
			if !strings.HasSuffix(s, "\n") {
				s += "\r\n"
			}
			want = append(want, s)
		}
		if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(want)) {
			t.Errorf("%s (mbox): got %q, want %q", c.name, got, want)
		}
	}
	// The folder structure of a mailbox export.
	var buf bytes.Buffer
	if _, err := tn.Export(ctx, ExportRequest{Scope: ExportScope{Mailboxes: []string{"alice@acme.example"}}, Format: ExportEML}, &buf); err != nil {
		t.Fatal(err)
	}
	zr, _ := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if want := "[alice@acme.example/INBOX/1.eml alice@acme.example/INBOX/2.eml alice@acme.example/Archiv_ alt/1.eml alice@acme.example/Projects/2023/1.eml]"; fmt.Sprint(names) != want {
		t.Errorf("entry names %v, want %s", names, want)
	}

	// Who may export: admins and compliance users, not readers.
	if _, err := tn.Export(ctx, ExportRequest{Scope: ExportScope{All: true}, Format: ExportEML, By: "dave@acme.example", Actor: "dave@acme.example"}, io.Discard); err == nil {
		t.Error("a reader exported the tenant")
	}
	if _, err := tn.Export(ctx, ExportRequest{Scope: ExportScope{All: true}, Format: ExportEML, By: "carol@acme.example", Actor: "carol@acme.example"}, io.Discard); err != nil {
		t.Errorf("compliance export: %v", err)
	}
	if _, err := tn.Export(ctx, ExportRequest{Scope: ExportScope{Mailboxes: []string{"nobody@acme.example"}}, Format: ExportEML}, io.Discard); err == nil {
		t.Error("export of an unknown mailbox")
	}
	entries, _ := tn.AuditLog(0, 0)
	var last AuditEntry
	exports := 0
	for _, e := range entries {
		if e.Action == "export" {
			exports++
			last = e
		}
	}
	if exports != 2*len(cases)+2 || last.Actor != "carol@acme.example" || !strings.Contains(last.Detail, "mailboxes=* messages=5") {
		t.Errorf("%d exports audited, last %+v", exports, last)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
