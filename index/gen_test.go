package index

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// commonWords start the generated vocabulary, most frequent first: business
// mail in English and German.
var commonWords = strings.Fields(`
the der die und to of and a in das ist for you we is ich sie on with be that es
nicht mit den von this für ein are have will please zu auf it as your our wir bei
at an im eine dem or can des thanks dank danke by from auch bitte if all hello hallo
would gruß grüße regards best meeting termin invoice rechnung order bestellung
project projekt report bericht attached anbei angebot offer contract vertrag
customer kunde price preis payment zahlung delivery lieferung next nächste week
woche monday montag friday freitag today heute tomorrow morgen question frage
team review update status budget quarter quartal sales umsatz plan call
telefon information informationen document dokument version draft entwurf
approval freigabe deadline frist schedule agenda minutes protokoll server
account konto password passwort access zugang issue problem ticket support
release kosten costs travel reise hotel flight flug office büro client
mandant steuer tax audit prüfung data daten backup system migration
`)

var syllables = strings.Fields(`ka lo mi ter ber an son vel dra kin tor mas ri pel
un ge ver ung heit keit lich bar sch str ei au ou ing tion ment er en el
ar on ik us at ol ur ap ex im re pro con`)

// corpusGen generates messages with Zipf-distributed words over a
// vocabulary of common words followed by generated ones.
type corpusGen struct {
	rng    *rand.Rand
	zipf   *rand.Zipf
	vocab  []string
	people []Address
	start  time.Time
}

func newCorpusGen(seed uint64) *corpusGen {
	rng := rand.New(rand.NewPCG(seed, 1))
	g := &corpusGen{rng: rng, start: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)}
	seen := map[string]bool{}
	for _, w := range commonWords {
		if !seen[w] {
			seen[w] = true
			g.vocab = append(g.vocab, w)
		}
	}
	for len(g.vocab) < 60000 {
		var b strings.Builder
		for range 2 + rng.IntN(3) {
			b.WriteString(syllables[rng.IntN(len(syllables))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			g.vocab = append(g.vocab, w)
		}
	}
	g.zipf = rand.NewZipf(rng, 1.07, 2, uint64(len(g.vocab)-1))
	domains := []string{"acme.example", "mail.globex.example", "initech.example", "umbrella-corp.example", "stark.example"}
	first := []string{"Anna", "Bernd", "Clara", "Dieter", "Eva", "Frank", "Gisela", "Hans-Peter", "Ingrid", "Jürgen", "Karen", "Lars", "Maria", "Nils", "Olga", "Paul"}
	last := []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Smith", "Jones"}
	for i := range 2000 {
		f, l := first[rng.IntN(len(first))], last[rng.IntN(len(last))]
		g.people = append(g.people, Address{
			Name:  f + " " + l,
			Email: fmt.Sprintf("%s.%s%d@%s", strings.ToLower(f), strings.ToLower(l), i, domains[rng.IntN(len(domains))]),
		})
	}
	return g
}

func (g *corpusGen) word() string { return g.vocab[g.zipf.Uint64()] }

func (g *corpusGen) text(minBytes int) string {
	var b strings.Builder
	for b.Len() < minBytes {
		b.WriteString(g.word())
		switch g.rng.IntN(20) {
		case 0:
			b.WriteString(".\n")
		case 1:
			b.WriteString(", ")
		default:
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func (g *corpusGen) person() Address { return g.people[g.rng.IntN(len(g.people))] }

// doc generates message mid, member of folder 1 and sometimes of 2..10.
func (g *corpusGen) doc(mid uint64, bodyBytes int) Doc {
	words := make([]string, 3+g.rng.IntN(6))
	for i := range words {
		words[i] = g.word()
	}
	subject := strings.Join(words, " ")
	if g.rng.IntN(3) == 0 {
		subject = "Re: " + subject
	}
	from := g.person()
	to := []Address{g.person()}
	for g.rng.IntN(3) == 0 {
		to = append(to, g.person())
	}
	received := g.start.Add(time.Duration(mid) * 7 * time.Minute)
	d := Doc{
		MID:      mid,
		Members:  []Member{{Folder: 1, UID: uint32(mid)}},
		From:     []Address{from},
		To:       to,
		Rcpt:     []string{to[0].Email},
		Subject:  subject,
		Body:     g.text(bodyBytes),
		Sent:     received.Add(-time.Duration(g.rng.IntN(600)) * time.Second),
		Received: received,
		Size:     int64(bodyBytes + 1500 + g.rng.IntN(50000)),
	}
	if g.rng.IntN(10) < 3 {
		d.Members = append(d.Members, Member{Folder: 2 + uint64(g.rng.IntN(9)), UID: uint32(mid/3 + 1)})
	}
	if g.rng.IntN(5) == 0 {
		d.Attachments = []string{g.word() + "-" + g.word() + ".pdf"}
		d.HasAttachment = true
	}
	d.MessageID = fmt.Sprintf("<%x.%d@mail.%s>", g.rng.Uint64(), mid, strings.SplitN(from.Email, "@", 2)[1])
	d.Headers = []HeaderField{
		{"Received", fmt.Sprintf("from mx%d.example.net (mx%d.example.net [192.0.2.%d]) by mail.acme.example with ESMTPS id %x; %s", mid%7, mid%7, mid%250, g.rng.Uint32(), received.Format(time.RFC1123Z))},
		{"Received", fmt.Sprintf("from [10.0.0.%d] by mx%d.example.net with ESMTPSA id %x", mid%200, mid%7, g.rng.Uint32())},
		{"DKIM-Signature", fmt.Sprintf("v=1; a=rsa-sha256; d=acme.example; b=%x%x%x", g.rng.Uint64(), g.rng.Uint64(), g.rng.Uint64())},
		{"From", from.Name + " <" + from.Email + ">"},
		{"To", to[0].Email},
		{"Subject", subject},
		{"Date", d.Sent.Format(time.RFC1123Z)},
		{"Message-ID", d.MessageID},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"X-Mailer", []string{"Microsoft Outlook 16.0", "Apple Mail (2.3654)", "Thunderbird 115.3"}[mid%3]},
	}
	return d
}
