package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/internal/imapwire"
)

// qresyncState is what a QRESYNC answer says, in a form two servers can
// agree on: the VANISHED sets, and for each UID fetched its flags and
// whether its MODSEQ is above the client's and at most HIGHESTMODSEQ.
type qresyncState struct {
	vanished []string
	fetched  []string // "UID flags"
	above    bool     // every MODSEQ fetched is above the modseq the client gave
	highest  uint64
	maxMod   uint64
}

var (
	qrUID     = regexp.MustCompile(`UID (\d+)`)
	qrFlags   = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	qrModSeq  = regexp.MustCompile(`MODSEQ \((\d+)\)`)
	qrHighest = regexp.MustCompile(`\[HIGHESTMODSEQ (\d+)\]`)
)

func qresyncOf(t *testing.T, untagged []string, since uint64) qresyncState {
	t.Helper()
	st := qresyncState{above: true}
	for _, l := range untagged {
		switch {
		case strings.HasPrefix(l, "* VANISHED "):
			st.vanished = append(st.vanished, strings.TrimPrefix(l, "* VANISHED "))
		case strings.Contains(l, " FETCH ("):
			uid, fl, ms := qrUID.FindStringSubmatch(l), qrFlags.FindStringSubmatch(l), qrModSeq.FindStringSubmatch(l)
			if uid == nil || fl == nil || ms == nil {
				t.Errorf("FETCH without UID, FLAGS or MODSEQ: %q", l)
				continue
			}
			flags := strings.Fields(strings.ReplaceAll(fl[1], `\Recent`, ""))
			slices.Sort(flags)
			st.fetched = append(st.fetched, uid[1]+" "+strings.Join(flags, " "))
			n, _ := strconv.ParseUint(ms[1], 10, 64)
			st.above = st.above && n > since
			st.maxMod = max(st.maxMod, n)
		default:
			if m := qrHighest.FindStringSubmatch(l); m != nil {
				st.highest, _ = strconv.ParseUint(m[1], 10, 64)
			}
		}
	}
	slices.Sort(st.fetched)
	return st
}

// TestQResyncLikeDovecot runs one QRESYNC resynchronisation on mailvault
// and on Debian's Dovecot: both hold the same six messages; the client
// enables QRESYNC and remembers UIDVALIDITY and HIGHESTMODSEQ; then a
// message is flagged, one goes (retention deletes it in the archive,
// EXPUNGE in Dovecot) and one arrives. Both must announce the removal as
// VANISHED, raise HIGHESTMODSEQ at each step, and answer SELECT (QRESYNC
// ...) and UID FETCH (CHANGEDSINCE ... VANISHED) with the same VANISHED
// (EARLIER) set and the same messages and flags, each with a MODSEQ above
// the remembered one and at most the new HIGHESTMODSEQ.
func TestQResyncLikeDovecot(t *testing.T) {
	dc := dovecotIMAP(t)
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("user", "add", "-tenant", "acme", "carol@acme.example", "-password", "carol-secret", "-role", "compliance")
	carol := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(append([]string{}, in.env...), "MAILVAULT_PASSWORD=carol-secret")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mailvault %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	policies := filepath.Join(t.TempDir(), "policies.json")
	if err := os.WriteFile(policies, []byte(`[{"name":"none","min":{}}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	carol("retention", "set", "-tenant", "acme", "-user", "carol@acme.example", policies)

	load := func(msgs []string) (dcUntagged []string) {
		t.Helper()
		dir := t.TempDir()
		for i, m := range msgs {
			date := messageDate(t, m)
			dcUntagged = dc.OK(fmt.Sprintf("APPEND INBOX (\\Seen) %q {%d+}\r\n%s", date.Format("02-Jan-2006 15:04:05 -0700"), len(m), m))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%02d.eml", i)), []byte(m), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		in.mustCLI("import", "-quiet", "-tenant", "acme", "-mailbox", "alice@acme.example", dir)
		waitIndexed(t, in, "acme") // retention deletes indexed mail only
		return dcUntagged
	}
	load(compareMessages[:6])
	mv := imapwire.Dial(t, in.IMAP)
	mv.OK(`LOGIN "alice@acme.example" "alice-secret"`)

	type server struct {
		name string
		c    *imapwire.Conn
		uv   string
		h0   uint64
	}
	servers := []*server{{name: "dovecot", c: dc}, {name: "mailvault", c: mv}}
	uvRE := regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`)
	highest := func(s *server, untagged []string) uint64 {
		t.Helper()
		st := qresyncOf(t, untagged, 0)
		if st.highest == 0 {
			t.Fatalf("%s: no HIGHESTMODSEQ in %q", s.name, untagged)
		}
		return st.highest
	}
	for _, s := range servers {
		if u := s.c.OK("ENABLE QRESYNC"); !slices.Contains(u, "* ENABLED QRESYNC") {
			t.Errorf("%s: ENABLE QRESYNC: %q", s.name, u)
		}
		u := s.c.OK("SELECT INBOX")
		for _, l := range u {
			if m := uvRE.FindStringSubmatch(l); m != nil {
				s.uv = m[1]
			}
		}
		s.h0 = highest(s, u)
	}

	// A flag changes.
	for _, s := range servers {
		st := qresyncOf(t, s.c.OK(`UID STORE 2 +FLAGS (\Flagged)`), s.h0)
		if len(st.fetched) != 1 || !st.above {
			t.Errorf("%s: STORE answered %+v, want UID 2 with a MODSEQ above %d", s.name, st, s.h0)
		}
	}

	// The third message goes: EXPUNGE in Dovecot, retention here.
	dc.OK(`UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	dcGone := qresyncOf(t, dc.OK("UID EXPUNGE 3"), 0).vanished
	out := in.mustCLI("retention", "dry-run", "-tenant", "acme", "-mailbox", "alice@acme.example", "-mid", "3")
	tok := regexp.MustCompile(`token: ([0-9a-f]+)`).FindStringSubmatch(out)
	if tok == nil || !strings.Contains(out, "1 placements would be deleted") {
		t.Fatalf("dry run:\n%s", out)
	}
	carol("retention", "delete", "-tenant", "acme", "-user", "carol@acme.example", "-mailbox", "alice@acme.example", "-mid", "3", "-confirm", tok[1])
	mvGone := qresyncOf(t, mv.OK("NOOP"), 0).vanished
	if !slices.Equal(dcGone, []string{"3"}) || !slices.Equal(mvGone, dcGone) {
		t.Errorf("the removal announced as VANISHED %q by Dovecot and %q by mailvault, want 3 by both", dcGone, mvGone)
	}

	// A message arrives.
	// Dovecot tells its own session at once.
	dcNew := load(compareMessages[6:7])
	time.Sleep(50 * time.Millisecond)
	for _, s := range servers {
		u := s.c.OK("NOOP")
		if s.c == dc {
			u = append(dcNew, u...)
		}
		if !slices.Contains(u, "* 6 EXISTS") {
			t.Errorf("%s: NOOP after the arrival: %q, want 6 EXISTS", s.name, u)
		}
	}

	// Resynchronise from the remembered state, three ways.
	answers := map[string][2]qresyncState{}
	for i, s := range servers {
		cmds := map[string]string{
			"select":       fmt.Sprintf("SELECT INBOX (QRESYNC (%s %d))", s.uv, s.h0),
			"known":        fmt.Sprintf("SELECT INBOX (QRESYNC (%s %d 1:2))", s.uv, s.h0),
			"uid fetch":    fmt.Sprintf("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", s.h0),
			"other uidval": fmt.Sprintf("EXAMINE INBOX (QRESYNC (%d %d))", mustUint(t, s.uv)+1, s.h0),
		}
		var now uint64
		for _, name := range []string{"select", "known", "other uidval", "uid fetch"} {
			u := s.c.OK(cmds[name])
			st := qresyncOf(t, u, s.h0)
			if name == "select" {
				now = st.highest
			}
			if !st.above || st.maxMod > now {
				t.Errorf("%s %s: MODSEQs not in (%d, %d]: %q", s.name, name, s.h0, now, u)
			}
			a := answers[name]
			a[i] = st
			answers[name] = a
		}
		st := qresyncOf(t, s.c.OK(fmt.Sprintf("SELECT INBOX (QRESYNC (%s %d))", s.uv, now)), now)
		if len(st.fetched)+len(st.vanished) > 0 {
			t.Errorf("%s: resync from the current HIGHESTMODSEQ %d returned %+v", s.name, now, st)
		}
		if now <= s.h0 {
			t.Errorf("%s: HIGHESTMODSEQ %d after the changes, before %d", s.name, now, s.h0)
		}
	}
	for name, a := range answers {
		t.Logf("%s: Dovecot %+v, mailvault %+v", name, a[0], a[1])
		d, m := a[0], a[1]
		if !slices.Equal(d.vanished, m.vanished) || !slices.Equal(d.fetched, m.fetched) {
			t.Errorf("%s: Dovecot VANISHED %q FETCH %q; mailvault VANISHED %q FETCH %q", name, d.vanished, d.fetched, m.vanished, m.fetched)
		}
	}
	if a := answers["select"][0]; !slices.Equal(a.vanished, []string{"(EARLIER) 3"}) || len(a.fetched) != 2 {
		t.Errorf("Dovecot's resync %+v: the test expects VANISHED (EARLIER) 3 and UIDs 2 and 7", a)
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
