package imapd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
)

// germanMessages are messages whose text hides in the places issue-prone
// searches miss: mid-word German compounds, phrases across line breaks,
// calendar invitations (folded, escaped), HTML titles, forwarded messages'
// headers, text attachments, quoted-printable, Date: in several zones.
func germanMessages(n int) []mailgen.Message {
	rng := rand.New(rand.NewPCG(19, 19))
	pieces := []func(b *strings.Builder, boundary string){
		func(b *strings.Builder, bd string) {
			part(b, bd, "text/plain; charset=utf-8", "8bit", "Anbei die Rechnungsnummer 2024-0815 und der Prüfbericht.\r\nLet me know if you need anything.\r\n")
		},
		func(b *strings.Builder, bd string) {
			part(b, bd, "text/plain; charset=utf-8", "quoted-printable", "Das =C3=9Cbergabeprotokoll liegt bei, bitte pr=C3=BCfen.=\r\n Let me\r\nknow by Friday.\r\n")
		},
		func(b *strings.Builder, bd string) {
			part(b, bd, "text/calendar; method=REQUEST; charset=utf-8", "8bit",
				"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Quartalsbesprechung Vertrieb\r\nLOCATION:Besprechungs\r\n raum 2.17\\, Geb\u00e4ude B\r\n"+
					"DESCRIPTION:Agenda:\\nUmsatzplanung\\; Personalbedarf\r\nDTSTART:20240301T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
		},
		func(b *strings.Builder, bd string) {
			part(b, bd, "text/html; charset=utf-8", "8bit",
				"<html><head><title>Jahresabschlussbericht Entwurf</title><style>p{}</style></head><body><p>Sehr geehrte Damen,</p><p>know me let</p></body></html>\r\n")
		},
		func(b *strings.Builder, bd string) {
			fmt.Fprintf(b, "--%s\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n", bd)
			b.WriteString("From: =?utf-8?q?J=C3=B6rg_Wei=C3=9F?= <j.weiss@partner.example>\r\nTo: lager@acme.example\r\n" +
				"Subject: =?utf-8?q?=C3=9Cbergabeprotokoll_Halle_3?=\r\nDate: Tue, 5 Mar 2024 10:00:00 +0100\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n\r\nDie Lagerbestandsliste folgt.\r\n")
		},
		func(b *strings.Builder, bd string) {
			fmt.Fprintf(b, "--%s\r\nContent-Type: text/plain; charset=iso-8859-1; name=\"notiz.txt\"\r\nContent-Disposition: attachment; filename=\"notiz.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", bd)
			b.WriteString("TGllZmVyYW50ZW5iZXdlcnR1bmcgZvxyIGRhcyBHZXNjaORmdHNqYWhyLg==\r\n") // "Lieferantenbewertung für das Geschäftsjahr." in Latin-1
		},
	}
	zones := []string{"+0100", "+0200", "-0800", "+1300", "+0000"}
	var out []mailgen.Message
	base := time.Date(2024, 2, 26, 22, 30, 0, 0, time.UTC)
	for i := range n {
		var b strings.Builder
		bd := fmt.Sprintf("b%d", i)
		date := base.Add(time.Duration(i) * 7 * time.Hour)
		zone := zones[i%len(zones)]
		loc, _ := time.Parse("-0700", zone)
		subjects := []string{"Prüfberichte Q1", "Re: Rechnungskorrektur", "Wochenbericht", "Termin: Quartalsbesprechung"}
		fmt.Fprintf(&b, "From: Karin Koch <karin@acme.example>\r\nTo: Alice <alice@acme.example>\r\nSubject: %s %d\r\n", subjects[i%len(subjects)], i)
		fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <g%d@acme.example>\r\nMIME-Version: 1.0\r\n", date.In(loc.Location()).Format(time.RFC1123Z), i)
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", bd)
		for k, p := range pieces {
			if rng.IntN(3) == 0 || k == i%len(pieces) {
				p(&b, bd)
			}
		}
		fmt.Fprintf(&b, "--%s--\r\n", bd)
		out = append(out, mailgen.Message{Raw: []byte(b.String()), Date: date})
	}
	return out
}

func part(b *strings.Builder, boundary, ctype, cte, body string) {
	fmt.Fprintf(b, "--%s\r\nContent-Type: %s\r\nContent-Transfer-Encoding: %s\r\n\r\n%s", boundary, ctype, cte, body)
}

// TestSearchSubstringReference compares IMAP SEARCH, through imaplib on
// loopback, with answers a Python script computes on its own from every
// fetched message (testdata/substring_ref.py): mid-word German terms,
// phrases, calendar, HTML-title and forwarded-header words, sent dates,
// on generated mail, the German messages above and the shared corpus when
// present.
func TestSearchSubstringReference(t *testing.T) {
	bin := needTool(t, "python3")
	withCorpus := len(corpusDir()) > 0
	f := newFixture(t, 150, withCorpus)
	german := f.ingest(t, f.acme, "alice@acme.example", "German", germanMessages(60))
	if err := f.acme.WaitIndexed(t.Context()); err != nil {
		t.Fatal(err)
	}
	folders := []string{"INBOX", "German"}
	if withCorpus {
		folders = append(folders, "Corpus")
	}
	queries := [][2]string{
		// mid-word and compound parts
		{"BODY", "echnung"}, {"BODY", "Bericht"}, {"BODY", "prüfbericht"}, {"BODY", "ERICHT"},
		{"BODY", "bergabeprotokoll"}, {"BODY", "ünchen"}, {"BODY", "rüfung"}, {"BODY", "üße"},
		{"BODY", "agerbestand"}, {"BODY", "antenbewertung"}, {"BODY", "schäftsjahr"}, {"BODY", "0815"},
		{"BODY", "oken00012"},
		// phrases
		{"BODY", "let me know"}, {"BODY", "et me kno"}, {"BODY", "know me let"}, {"BODY", "Rechnung Bestellung"},
		{"BODY", "nummer 2024"}, {"BODY", "please attached"},
		// calendar, HTML title, forwarded header
		{"BODY", "Besprechungsraum 2.17"}, {"BODY", "esprechungsraum"}, {"BODY", "Personalbedarf"},
		{"BODY", "ahresabschluss"}, {"BODY", "Halle 3"}, {"BODY", "j.weiss@partner"}, {"BODY", "Jörg Weiß"},
		// other keys
		{"TEXT", "echnungskorrektur"}, {"TEXT", "bergabeprotokoll"}, {"SUBJECT", "ochenber"}, {"SUBJECT", "rüfberichte"},
		{"SUBJECT", "uartal"}, {"FROM", "arin"}, {"FROM", "ller"}, {"FROM", "koch"},
		// sent dates, as written in the message's own zone
		{"SENTSINCE", "1-Mar-2024"}, {"SENTBEFORE", "3-Mar-2024"}, {"SENTON", "4-Mar-2024"},
		{"SENTSINCE", "20-Jan-2016"}, {"SENTON", "5-Jan-2016"},
	}
	if withCorpus {
		queries = append(queries, [][2]string{
			{"BODY", "nron"}, {"BODY", "ttachm"}, {"BODY", "ubscri"}, {"BODY", "ailing list"},
			{"BODY", "ernel"}, {"SUBJECT", "atch"}, {"FROM", "nron"}, {"BODY", "please let me know"},
		}...)
	}
	spec, err := json.Marshal(map[string]any{"folders": folders, "queries": queries})
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(f.addr)
	cmd := exec.Command(bin, "testdata/substring_ref.py", host, port, "alice@acme.example", password)
	cmd.Stdin = bytes.NewReader(spec)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("substring_ref.py: %v", err)
	}
	var out map[string]struct {
		Messages int
		Results  map[string]struct{ Expected, Got []int }
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	selective := 0
	for _, folder := range folders {
		res := out[folder]
		if res.Messages == 0 {
			t.Errorf("%s: no messages fetched", folder)
		}
		for _, q := range queries {
			key := q[0] + " " + q[1]
			r, ok := res.Results[key]
			if !ok {
				t.Fatalf("%s: no result for %s", folder, key)
			}
			if !slices.Equal(r.Expected, r.Got) {
				box := map[string][]archived{"INBOX": f.inbox, "German": german, "Corpus": f.corpus}[folder]
				t.Errorf("%s: %s: server %d, reference %d messages\n missing %v\n extra   %v%s",
					folder, key, len(r.Got), len(r.Expected), minus(r.Expected, r.Got), minus(r.Got, r.Expected),
					describe(box, append(minus(r.Expected, r.Got), minus(r.Got, r.Expected)...)))
			}
			if len(r.Expected) > 0 && len(r.Expected) < res.Messages {
				selective++
			}
		}
	}
	// The keys must discriminate, or the comparison proves nothing.
	if selective < 40 {
		t.Errorf("only %d selective answers", selective)
	}
}

// minus lists the members of a not in b.
func minus(a, b []int) []int {
	var out []int
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// describe shows the Date and Subject of a few messages, to tell a
// difference apart.
func describe(box []archived, uids []int) string {
	var b strings.Builder
	for _, u := range uids[:min(len(uids), 3)] {
		for _, m := range box {
			if int(m.uid) != u {
				continue
			}
			fmt.Fprintf(&b, "\n  uid %d sha %.12s:", u, sha(m.raw))
			for _, line := range strings.Split(string(m.raw), "\n") {
				if l := strings.ToLower(line); strings.HasPrefix(l, "date:") || strings.HasPrefix(l, "subject:") {
					fmt.Fprintf(&b, " %.100q", strings.TrimSpace(line))
				}
			}
		}
	}
	return b.String()
}
