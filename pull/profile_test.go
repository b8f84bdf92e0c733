package pull

import (
	"errors"
	"testing"

	"github.com/mailvault/mailvault/backend"
)

func TestWanted(t *testing.T) {
	p := Profile{Exclude: []string{"Newsletters/*"}}
	for name, want := range map[string]bool{
		"INBOX": true, "Projekte/Grün": true, "Trash": false, "Junk": false, "Spam": false,
		"Newsletters/2020": false, "Newsletters": true,
	} {
		if got := p.wanted(name, false); got != want {
			t.Errorf("wanted(%q) = %v, want %v", name, got, want)
		}
	}
	if p.wanted("Papierkorb", true) {
		t.Error("a folder with \\Trash was pulled")
	}
	p.Include = []string{"Trash", "INBOX"}
	if !p.wanted("Trash", true) || p.wanted("Sent", false) {
		t.Error("include does not decide")
	}
}

func TestCheck(t *testing.T) {
	ok := Profile{Name: "bob", Host: "h", Login: "l", Mailbox: "m@x.example"}
	if err := ok.check(); err != nil || ok.Security != SecurityTLS || ok.port() != 993 {
		t.Fatalf("check: %v %s %d", err, ok.Security, ok.port())
	}
	for _, p := range []Profile{
		{Name: "Bob!", Host: "h", Login: "l", Mailbox: "m"},
		{Name: "bob", Login: "l", Mailbox: "m"},
		{Name: "bob", Host: "h", Login: "l", Mailbox: "m", Security: "ssl"},
		{Name: "bob", Host: "h", Login: "l", Mailbox: "m", Interval: Duration(1)},
		{Name: "bob", Host: "h", Login: "l", Mailbox: "m", Include: []string{"["}},
	} {
		if err := p.check(); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", p, err)
		}
	}
	m := Profile{Login: "bob", MasterLogin: "archiver"}
	if m.user() != "bob*archiver" {
		t.Errorf("master login %q", m.user())
	}
}
