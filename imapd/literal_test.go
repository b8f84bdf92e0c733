package imapd

import (
	"fmt"
	"strings"
	"testing"
)

// LITERAL+ (RFC 7888) is offered before login and a LOGIN with
// non-synchronizing literals works without continuation requests.
func TestLiteralPlus(t *testing.T) {
	f := newFixture(t, 1, false)
	c := dialRaw(t, f.addr)
	if u := c.OK("CAPABILITY"); len(u) != 1 || !strings.Contains(u[0], " LITERAL+") || strings.Contains(u[0], "LITERAL-") {
		t.Fatalf("CAPABILITY before login: %q", u)
	}
	user := "alice@acme.example"
	fmt.Fprintf(c.Net(), "p1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n", len(user), user, len(password), password)
	for {
		l := c.Line()
		if strings.HasPrefix(l, "+") {
			t.Fatalf("continuation request %q for a non-synchronizing literal", l)
		}
		if strings.HasPrefix(l, "p1 ") {
			if !strings.HasPrefix(l, "p1 OK") {
				t.Fatalf("LOGIN: %q", l)
			}
			break
		}
	}
	c.OK("SELECT INBOX")
}
