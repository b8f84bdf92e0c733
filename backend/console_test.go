package backend

import (
	"context"
	"fmt"
	"testing"
)

// TestAuditPage: newest first, filtered, in pages that join up.
func TestAuditPage(t *testing.T) {
	_, tn := dirTestTenant(t, "acme.example")
	ctx := context.Background()
	for i := range 25 {
		actor := "a@acme.example"
		if i%2 == 1 {
			actor = "b@acme.example"
		}
		tn.Audit(ctx, actor, fmt.Sprintf("hold-%d", i%3), fmt.Sprintf("Case %02d", i))
	}
	var got []uint64
	for before := uint64(0); ; {
		es, next, err := tn.AuditPage(AuditFilter{Actor: "B@acme.example"}, before, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got = append(got, e.Seq)
		}
		if next == 0 {
			break
		}
		before = next
	}
	if len(got) != 12 || got[0] <= got[11] {
		t.Fatalf("actor b: %v", got)
	}
	es, next, _ := tn.AuditPage(AuditFilter{Action: "hold-", Text: "case 2"}, 0, 10)
	if len(es) != 5 || next != 0 || es[0].Detail != "Case 24" {
		t.Fatalf("prefix and text filter: %+v %d", es, next)
	}
	if es, _, _ := tn.AuditPage(AuditFilter{Action: "hold-1"}, 0, 100); len(es) != 8 {
		t.Fatalf("exact action: %d", len(es))
	}
}

func TestContainsFoldASCII(t *testing.T) {
	for _, c := range []struct {
		s, sub string
		want   bool
	}{{`{"actor":"Bob@Acme.example"}`, "bob@acme", true}, {"abc", "ABC", true}, {"abc", "abd", false}, {"ab", "abc", false}, {"x", "", true}} {
		if got := containsFoldASCII(c.s, c.sub); got != c.want {
			t.Errorf("containsFoldASCII(%q, %q) = %v", c.s, c.sub, got)
		}
	}
}
