// Package mailgen generates realistic synthetic business mail for the demo
// tenant, benchmarks and tests: multilingual text bodies, HTML alternatives,
// attachments, threads and a fixed set of people, reproducible from a seed.
package mailgen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Person is a generated correspondent.
type Person struct{ Name, Address string }

// Generator produces messages deterministically from its seed.
type Generator struct {
	rnd    *rand.Rand
	People []Person
	// AvgSize is the average raw size to aim at; attachments make up the
	// difference, as in real business mail.
	AvgSize int
	Start   time.Time
	n       int
}

var words = strings.Fields(`invoice order delivery contract meeting agenda quarter budget forecast
report project customer supplier payment reminder shipment warehouse offer proposal review
Rechnung Bestellung Lieferung Vertrag Besprechung Angebot Zahlung Mahnung Kunde Lieferant Projekt
Bericht Quartal Umsatz Steuer Prüfung Straße Grüße Köln München Zürich Wien the and for with from
please attached regarding following schedule approval signature deadline update status team
budget numbers review draft final version legal compliance audit archive retention policy`)

var firstNames = strings.Fields("Alice Bob Carol Dave Erika Frank Grete Hans Ines Jonas Karin Lukas Mia Noah Olga Paul")
var lastNames = strings.Fields("Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Hoffmann Schulz Koch Richter")

// New returns a generator with nPeople people in each of the domains.
func New(seed uint64, domains []string, nPeople int) *Generator {
	g := &Generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), AvgSize: 30 << 10,
		Start: time.Date(2016, 1, 4, 8, 0, 0, 0, time.UTC)}
	for _, d := range domains {
		for i := 0; i < nPeople; i++ {
			fn := firstNames[i%len(firstNames)]
			ln := lastNames[(i/len(firstNames)+i)%len(lastNames)]
			local := strings.ToLower(fn)
			if i >= len(firstNames) {
				local = fmt.Sprintf("%s%d", local, i/len(firstNames))
			}
			g.People = append(g.People, Person{Name: fn + " " + ln, Address: local + "@" + d})
		}
	}
	return g
}

func (g *Generator) sentence(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[g.rnd.IntN(len(words))])
	}
	return b.String()
}

// Message is a generated message with the facts tests check against.
type Message struct {
	Raw      []byte
	From     Person
	To       []Person
	Subject  string
	Date     time.Time
	Words    []string // a few distinctive body words
	HasAttch bool
}

// Next returns the next message.
func (g *Generator) Next() Message {
	g.n++
	from := g.People[g.rnd.IntN(len(g.People))]
	var to []Person
	for k := 1 + g.rnd.IntN(3); len(to) < k; {
		p := g.People[g.rnd.IntN(len(g.People))]
		if p != from {
			to = append(to, p)
		}
	}
	date := g.Start.Add(time.Duration(g.n) * 37 * time.Minute)
	subject := fmt.Sprintf("%s %s #%d", g.sentence(3), g.sentence(1), g.n)
	token := fmt.Sprintf("token%06d", g.n)
	body := fmt.Sprintf("Hallo %s,\r\n\r\n", to[0].Name)
	for i := 0; i < 12+g.rnd.IntN(30); i++ {
		body += g.sentence(8+g.rnd.IntN(10)) + ".\r\n"
	}
	body += "Reference " + token + "\r\n\r\nGrüße\r\n" + from.Name + "\r\n"

	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s <%s>\r\n", from.Name, from.Address)
	var tos []string
	for _, p := range to {
		tos = append(tos, fmt.Sprintf("%s <%s>", p.Name, p.Address))
	}
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(tos, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%s@%s>\r\n", g.n, token, domain(from.Address))
	b.WriteString("MIME-Version: 1.0\r\n")
	attach := g.AvgSize - len(body) - 600
	hasAttach := attach > 1024 && g.rnd.IntN(10) < 7
	if hasAttach {
		// 70% of messages carry an attachment sized so that the average
		// lands at AvgSize.
		attach = attach * 10 / 7
		attach = attach/2 + g.rnd.IntN(attach)
	}
	if !hasAttach {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		b.WriteString(body)
	} else {
		boundary := fmt.Sprintf("=_mv_%d", g.n)
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", boundary, body)
		data := make([]byte, attach*3/4)
		for i := range data {
			data[i] = byte(g.rnd.IntN(64)) // compressible like real office documents
		}
		name := fmt.Sprintf("%s-%d.pdf", strings.ToLower(g.sentence(1)), g.n)
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pdf; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary, name, name)
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteString("\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
		fmt.Fprintf(&b, "--%s--\r\n", boundary)
	}
	return Message{Raw: b.Bytes(), From: from, To: to, Subject: subject, Date: date, Words: []string{token}, HasAttch: hasAttach}
}

func domain(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}
