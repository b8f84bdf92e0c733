package imapd

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// condstoreScript resynchronises with CONDSTORE (RFC 7162) through
// python3's imaplib, in raw commands: one session keeps INBOX open while a
// second session of the same user changes flags, then the first asks only
// for what changed and stores conditionally. It prints JSON.
const condstoreScript = `
import imaplib, json, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
u1, u2, u3 = sys.argv[5], sys.argv[6], sys.argv[7]
out = {}

def raw(M, name, *args):
    tag = M._command(name, *args)
    typ, dat = M._command_complete(name, tag)
    lines = []
    for key in ("ENABLED", "FETCH", "STATUS", "SEARCH"):
        for x in M.untagged_responses.pop(key, []):
            if isinstance(x, tuple):
                x = x[0]
            lines.append(key + " " + x.decode())
    return typ + " " + b" ".join(d for d in dat if d).decode(), lines

A = imaplib.IMAP4(host, port)
A.login(user, pw)
typ, d = A.capability()
out["caps"] = d[0].decode().split()
out["enable"] = raw(A, "ENABLE", "CONDSTORE")
out["select"] = raw(A, "SELECT", "INBOX", "(CONDSTORE)")
A.state = "SELECTED" # imaplib's select() takes no parameters
m0 = A.untagged_responses.pop("HIGHESTMODSEQ")[-1].decode()
out["m0"] = m0
out["fetch_all"] = raw(A, "UID", "FETCH", "1:*", "(FLAGS MODSEQ)")

B = imaplib.IMAP4(host, port)
B.login(user, pw)
B.select("INBOX")
typ, d = B.uid("STORE", u1 + "," + u2, "+FLAGS", "(\\Flagged)")
B.logout()

out["noop"] = raw(A, "NOOP")
out["changed"] = raw(A, "UID", "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE " + m0 + ")")
out["status"] = raw(A, "STATUS", "INBOX", "(HIGHESTMODSEQ MESSAGES)")
out["search"] = raw(A, "UID", "SEARCH", "MODSEQ", str(int(m0) + 1))
out["search_entry"] = raw(A, "UID", "SEARCH", "NOT", "MODSEQ", '"/flags/\\\\flagged"', "all", str(int(m0) + 1))
out["cond_store"] = raw(A, "UID", "STORE", u1 + "," + u3, "(UNCHANGEDSINCE " + m0 + ")", "+FLAGS", "(\\Answered)")
out["after"] = raw(A, "UID", "FETCH", u1 + "," + u3, "(FLAGS MODSEQ)")
A.logout()
print(json.dumps(out))
`

// TestPythonCondstore: after another session flags two messages, FETCH
// CHANGEDSINCE returns exactly those with their new MODSEQ, HIGHESTMODSEQ
// grows, and STORE UNCHANGEDSINCE changes the message nobody touched but
// answers MODIFIED for the one changed since.
func TestPythonCondstore(t *testing.T) {
	bin := needTool(t, "python3")
	f := newFixture(t, 8, false)
	script := filepath.Join(t.TempDir(), "condstore.py")
	writeFile(t, script, condstoreScript)
	host, port, _ := net.SplitHostPort(f.addr)
	u1, u2, u3 := f.inbox[1].uid, f.inbox[4].uid, f.inbox[6].uid
	cmd := exec.Command(bin, script, host, port, "alice@acme.example", password, fmt.Sprint(u1), fmt.Sprint(u2), fmt.Sprint(u3))
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, raw)
	}
	type answer struct {
		status string
		lines  []string
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	get := func(key string) answer {
		var v []json.RawMessage
		var a answer
		if err := json.Unmarshal(out[key], &v); err != nil || len(v) != 2 {
			t.Fatalf("%s: %s", key, out[key])
		}
		json.Unmarshal(v[0], &a.status)
		json.Unmarshal(v[1], &a.lines)
		return a
	}
	var caps []string
	json.Unmarshal(out["caps"], &caps)
	if !slices.Contains(caps, "CONDSTORE") {
		t.Errorf("capabilities %v lack CONDSTORE", caps)
	}
	if a := get("enable"); !slices.Contains(a.lines, "ENABLED CONDSTORE") {
		t.Errorf("ENABLE CONDSTORE: %v", a)
	}
	if a := get("select"); !strings.HasPrefix(a.status, "OK") {
		t.Fatalf("SELECT INBOX (CONDSTORE): %v", a)
	}
	var m0s string
	json.Unmarshal(out["m0"], &m0s)
	m0, err := strconv.ParseUint(m0s, 10, 64)
	if err != nil || m0 == 0 {
		t.Fatalf("HIGHESTMODSEQ %q", m0s)
	}
	fetchRE := regexp.MustCompile(`UID (\d+)|MODSEQ \((\d+)\)|FLAGS \(([^)]*)\)`)
	type item struct {
		modseq uint64
		flags  string
	}
	parse := func(lines []string) map[uint32]item {
		res := map[uint32]item{}
		for _, l := range lines {
			var uid uint32
			var it item
			for _, m := range fetchRE.FindAllStringSubmatch(l, -1) {
				switch {
				case m[1] != "":
					n, _ := strconv.ParseUint(m[1], 10, 32)
					uid = uint32(n)
				case m[2] != "":
					it.modseq, _ = strconv.ParseUint(m[2], 10, 64)
				default:
					it.flags = m[3]
				}
			}
			if uid != 0 {
				res[uid] = it
			}
		}
		return res
	}
	all := parse(get("fetch_all").lines)
	if len(all) != len(f.inbox) {
		t.Errorf("FETCH 1:* (FLAGS MODSEQ): %d messages, want %d: %v", len(all), len(f.inbox), get("fetch_all"))
	}
	for uid, it := range all {
		if it.modseq == 0 || it.modseq > m0 {
			t.Errorf("UID %d: MODSEQ %d, want 1..HIGHESTMODSEQ %d", uid, it.modseq, m0)
		}
	}
	changed := parse(get("changed").lines)
	if len(changed) != 2 || changed[u1].modseq <= m0 || changed[u2].modseq <= m0 ||
		!strings.Contains(changed[u1].flags, `\Flagged`) || !strings.Contains(changed[u2].flags, `\Flagged`) {
		t.Errorf("UID FETCH (CHANGEDSINCE %d): %v, want UIDs %d and %d flagged with a MODSEQ above", m0, get("changed"), u1, u2)
	}
	st := get("status")
	m1 := uint64(0)
	if len(st.lines) == 1 {
		if m := regexp.MustCompile(`HIGHESTMODSEQ (\d+)`).FindStringSubmatch(st.lines[0]); m != nil {
			m1, _ = strconv.ParseUint(m[1], 10, 64)
		}
	}
	if m1 != changed[u1].modseq {
		t.Errorf("STATUS HIGHESTMODSEQ: %v, want %d", st, changed[u1].modseq)
	}
	wantSearch := fmt.Sprintf("SEARCH %d %d (MODSEQ %d)", min(u1, u2), max(u1, u2), m1)
	if s := get("search"); len(s.lines) != 1 || s.lines[0] != wantSearch {
		t.Errorf("UID SEARCH MODSEQ %d: %v, want %q", m0+1, s, wantSearch)
	}
	if s := get("search_entry"); len(s.lines) != 1 || len(strings.Fields(s.lines[0])) != len(f.inbox)-2+1 {
		t.Errorf("UID SEARCH NOT MODSEQ entry %d: %v, want the %d others", m0+1, s, len(f.inbox)-2)
	}
	cs := get("cond_store")
	if !strings.HasPrefix(cs.status, fmt.Sprintf("OK [MODIFIED %d]", u1)) {
		t.Errorf("STORE (UNCHANGEDSINCE %d): %q, want OK [MODIFIED %d]", m0, cs.status, u1)
	}
	stored := parse(cs.lines)
	if len(stored) != 1 || stored[u3].modseq <= m1 || !strings.Contains(stored[u3].flags, `\Answered`) {
		t.Errorf("STORE (UNCHANGEDSINCE %d): %v, want UID %d answered with a MODSEQ above %d", m0, cs.lines, u3, m1)
	}
	after := parse(get("after").lines)
	if strings.Contains(after[u1].flags, `\Answered`) || !strings.Contains(after[u3].flags, `\Answered`) || after[u3].modseq != stored[u3].modseq {
		t.Errorf("after the conditional STORE: %v", get("after"))
	}
}
