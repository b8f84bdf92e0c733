package imapd

import (
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailvault/mailvault/mailparse"
)

// TestTypedCorpus fetches ENVELOPE, BODYSTRUCTURE and every leaf part of
// every real-world message with go-imap's client, whose parser is strict:
// broken mail must still produce well-formed responses, and each part must
// be the bytes the stored summary points at, with CRLF line ends as IMAP
// presents them (sizes counted so too).
func TestTypedCorpus(t *testing.T) {
	f := newFixture(t, 0, true)
	c, err := imapclient.DialInsecure(f.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@acme.example", password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Corpus", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	got, err := c.Fetch(all, &imap.FetchOptions{
		UID: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, RFC822Size: true,
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(f.corpus) {
		t.Fatalf("fetched %d messages, archived %d", len(got), len(f.corpus))
	}
	byUID := map[imap.UID]archived{}
	for _, m := range f.corpus {
		byUID[imap.UID(m.uid)] = m
	}
	parts := 0
	for _, m := range got {
		a := byUID[m.UID]
		if want := mailparse.CRLFLen(a.raw); m.RFC822Size != want {
			t.Errorf("UID %d: RFC822.SIZE %d, want %d", m.UID, m.RFC822Size, want)
		}
		if m.Envelope == nil || m.BodyStructure == nil {
			t.Errorf("UID %d: no ENVELOPE or BODYSTRUCTURE", m.UID)
			continue
		}
		if err := checkEnvelopeAddrs(a.raw, m.Envelope); err != nil {
			t.Errorf("UID %d: %v", m.UID, err)
		}
		sum := mailparse.Parse(a.raw, mailparse.Options{MaxText: -1})
		// The wire form is RFC 2047 encoded; the client decodes it.
		if m.Envelope.Subject != sum.Envelope.Subject {
			t.Errorf("UID %d: subject %q, want %q", m.UID, m.Envelope.Subject, sum.Envelope.Subject)
		}
		// Every leaf part, by its path in the BODYSTRUCTURE the client
		// parsed, is the slice the summary records.
		var sections []*imap.FetchItemBodySection
		var want [][]byte
		m.BodyStructure.Walk(func(path []int, part imap.BodyStructure) bool {
			if sp, ok := part.(*imap.BodyStructureSinglePart); ok {
				if s, e, ok := sum.Section(path, ""); ok {
					sections = append(sections, &imap.FetchItemBodySection{Part: path, Peek: true})
					want = append(want, mailparse.AppendCRLF(nil, a.raw[s:e]))
					if int64(sp.Size) != int64(len(want[len(want)-1])) {
						t.Errorf("UID %d part %v: BODYSTRUCTURE size %d, want %d", m.UID, path, sp.Size, len(want[len(want)-1]))
					}
				}
			}
			return true
		})
		if len(sections) == 0 {
			continue
		}
		res, err := c.Fetch(imap.UIDSetNum(m.UID), &imap.FetchOptions{UID: true, BodySection: sections}).Collect()
		if err != nil {
			t.Fatalf("UID %d: %v", m.UID, err)
		}
		if len(res) != 1 {
			t.Fatalf("UID %d: %d responses", m.UID, len(res))
		}
		for i, sec := range sections {
			parts++
			if b := res[0].FindBodySection(sec); !bytes.Equal(b, want[i]) {
				t.Errorf("UID %d part %v: got %d bytes, want %d", m.UID, sec.Part, len(b), len(want[i]))
			}
		}
	}
	t.Logf("%d messages, %d parts", len(got), parts)
}
