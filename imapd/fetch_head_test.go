package imapd

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
)

// Header sections and BODYSTRUCTURE served from the stored heads are what
// the archived message gives; messages whose lines end in LF alone get
// CRLF.
func TestFetchHeadsAsMessage(t *testing.T) {
	f := newFixture(t, 40, len(corpusDir()) > 0)
	bare := []byte("From: Bob <bob@acme.example>\nTo: alice@acme.example\nSubject: bare\n line ends\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody\n")
	f.ingest(t, f.acme, "alice@acme.example", "Bare", []mailgen.Message{{Raw: bare, Date: time.Now()}})
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	const items = "BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (From Subject Date X-Nope)] BODY.PEEK[HEADER.FIELDS.NOT (Received)]<0.200> RFC822.HEADER"
	// BODY[TEXT] makes the server read the messages themselves.
	text := regexp.MustCompile(`(?s) BODY\[TEXT\]<0> (\{\d+\}.?|""|NIL)\)$`)
	folders := map[string][]archived{"INBOX": f.inbox}
	if len(f.corpus) > 0 {
		folders["Corpus"] = f.corpus
	}
	for name, msgs := range folders {
		c.OK("SELECT " + name)
		heads := c.OK("UID FETCH 1:* (" + items + ")")
		whole := c.OK("UID FETCH 1:* (" + items + " BODY.PEEK[TEXT]<0.1>)")
		if len(heads) != len(msgs) || len(whole) != len(msgs) {
			t.Fatalf("%s: %d and %d responses for %d messages", name, len(heads), len(whole), len(msgs))
		}
		checked := 0
		for i, m := range msgs {
			if hasBareLF(m.raw) {
				continue // presented with CRLF, unlike the bytes read below
			}
			w := text.ReplaceAllString(whole[i], ")")
			if w == whole[i] {
				t.Fatalf("%s UID %d: no BODY[TEXT] in %.300q", name, m.uid, whole[i])
			}
			if heads[i] != w {
				t.Errorf("%s UID %d:\nfrom heads   %.600q\nfrom message %.600q", name, m.uid, heads[i], w)
			}
			checked++
		}
		if checked == 0 || name == "INBOX" && checked != len(msgs) {
			t.Errorf("%s: only %d of %d messages compared", name, checked, len(msgs))
		}
		// One set of header fields is written as kept after the first
		// time, whatever the order and case of the names.
		fieldsFromMessage := c.OK("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (From Subject Date X-Nope)] BODY.PEEK[TEXT]<0.1>)")
		partialFromMessage := c.OK("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS.NOT (Received)]<3.40> BODY.PEEK[TEXT]<0.1>)")
		for round, items := range []string{"UID FLAGS BODY.PEEK[HEADER.FIELDS (From Subject Date X-Nope)]", "UID FLAGS BODY.PEEK[HEADER.FIELDS (date x-nope SUBJECT from from)]"} {
			kept := c.OK("UID FETCH 1:* (" + items + ")")
			for i, m := range msgs {
				// The fields themselves, after the literal's size.
				w := text.ReplaceAllString(fieldsFromMessage[i], ")")
				w, g := w[strings.Index(w, "}"):], kept[i][strings.Index(kept[i], "}"):]
				if !hasBareLF(m.raw) && g != w {
					t.Fatalf("%s header fields round %d: %q, from the message %q", name, round, kept[i], w)
				}
			}
		}
		for round := range 2 {
			kept := c.OK("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS.NOT (Received)]<3.40>)")
			for i, m := range msgs {
				if w := text.ReplaceAllString(partialFromMessage[i], ")"); !hasBareLF(m.raw) && kept[i] != w {
					t.Fatalf("%s header fields partial round %d: %q, from the message %q", name, round, kept[i], w)
				}
			}
		}
		// BODYSTRUCTURE alone is written as kept after the first time.
		fromMessage := c.OK("UID FETCH 1:* (UID BODYSTRUCTURE BODY.PEEK[TEXT]<0.1>)")
		for round := range 2 {
			kept := c.OK("UID FETCH 1:* (UID BODYSTRUCTURE)")
			for i := range msgs {
				if w := text.ReplaceAllString(fromMessage[i], ")"); kept[i] != w {
					t.Fatalf("%s round %d: %q, from the message %q", name, round, kept[i], w)
				}
			}
		}
	}
	// With UTF-8 in quoted strings the structures are kept apart.
	c.OK("ENABLE UTF8=ACCEPT")
	for name, msgs := range folders {
		c.OK("SELECT " + name)
		fromMessage := c.OK("UID FETCH 1:* (UID BODYSTRUCTURE BODY.PEEK[TEXT]<0.1>)")
		for round := range 2 {
			kept := c.OK("UID FETCH 1:* (UID BODYSTRUCTURE)")
			for i := range msgs {
				if w := text.ReplaceAllString(fromMessage[i], ")"); kept[i] != w {
					t.Fatalf("UTF8=ACCEPT %s round %d: %q, from the message %q", name, round, kept[i], w)
				}
			}
		}
	}
	c.OK("SELECT Bare")
	u := c.OK("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	h := strings.ReplaceAll(string(bare[:bytes.Index(bare, []byte("\n\n"))+2]), "\n", "\r\n")
	want := fmt.Sprintf("BODY[HEADER] {%d}%s BODY[HEADER.FIELDS (SUBJECT)] {29}Subject: bare\r\n line ends\r\n\r\n)", len(h), h)
	if len(u) != 1 || !strings.HasSuffix(u[0], want) {
		t.Errorf("bare LF message: %q, want it to end in %q", u, want)
	}
}

func hasBareLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}
