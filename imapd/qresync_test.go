package imapd

import (
	"bufio"
	"context"
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
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailgen"
)

// qresyncScript resynchronises with QRESYNC (RFC 7162) through python3's
// imaplib in raw commands. Phase 1 opens INBOX with QRESYNC enabled and
// prints what a client caches; then it waits for a line on stdin while the
// test delivers a message and deletes one by retention. Phase 2 sees the
// deletion announced as VANISHED, lets a second session change flags, and
// resynchronises by UID FETCH (CHANGEDSINCE VANISHED) and by SELECT
// (QRESYNC ...) on a new connection. Each phase prints one JSON line.
const qresyncScript = `
import imaplib, json, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
u1, u2 = sys.argv[5], sys.argv[6]

def raw(M, name, *args):
    tag = M._command(name, *args)
    try:
        typ, dat = M._command_complete(name, tag)
    except M.error as e:
        return "BAD " + str(e), []
    M.untagged_responses.pop("READ-ONLY", None)
    lines = []
    for key in ("ENABLED", "FETCH", "VANISHED", "EXPUNGE", "EXISTS", "HIGHESTMODSEQ", "UIDVALIDITY", "UIDNEXT", "CLOSED"):
        for x in M.untagged_responses.pop(key, []):
            if isinstance(x, tuple):
                x = x[0]
            lines.append(key + " " + (x.decode() if x is not None else ""))
    return typ + " " + b" ".join(d for d in dat if d).decode(), lines

def conn():
    M = imaplib.IMAP4(host, port)
    M.login(user, pw)
    return M

out = {}
C = conn()
out["select_not_enabled"] = raw(C, "SELECT", "INBOX", "(QRESYNC (1 1))")
out["fetch_not_enabled"] = raw(C, "EXAMINE", "INBOX")
C.state = "SELECTED"
out["vanished_not_enabled"] = raw(C, "UID", "FETCH", "1:*", "FLAGS", "(CHANGEDSINCE 1 VANISHED)")
C.logout()
A = conn()
typ, d = A.capability()
out["caps"] = [d[0].decode(), []]
out["enable"] = raw(A, "ENABLE", "QRESYNC")
out["select"] = raw(A, "SELECT", "INBOX")
A.state = "SELECTED"
print(json.dumps(out), flush=True)

sys.stdin.readline()
out = {}
out["noop"] = raw(A, "NOOP")
B = conn()
B.select("INBOX")
B.uid("STORE", u1 + "," + u2, "+FLAGS", "(\\Flagged)")
B.logout()
m0 = sys.argv[7]
out["changed"] = raw(A, "UID", "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE " + m0 + " VANISHED)")
out["fetch_seq_vanished"] = raw(A, "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE " + m0 + " VANISHED)")
A.logout()
D = conn()
out["enable2"] = raw(D, "ENABLE", "QRESYNC")
uv = sys.argv[8]
out["resync"] = raw(D, "SELECT", "INBOX", "(QRESYNC (" + uv + " " + m0 + "))")
D.state = "SELECTED"
out["resync_known"] = raw(D, "EXAMINE", "INBOX", "(QRESYNC (" + uv + " " + m0 + " " + u1 + ":" + u2 + " (1:2 " + sys.argv[9] + ")))")
out["resync_other_uidvalidity"] = raw(D, "EXAMINE", "INBOX", "(QRESYNC (" + str(int(uv) + 1) + " " + m0 + "))")
D.logout()
print(json.dumps(out), flush=True)
`

type qAnswer struct {
	status string
	lines  []string
}

func qAnswers(t *testing.T, line string) map[string]qAnswer {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &raw); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	out := map[string]qAnswer{}
	for k, v := range raw {
		var pair []json.RawMessage
		if json.Unmarshal(v, &pair) != nil || len(pair) != 2 {
			continue
		}
		var a qAnswer
		json.Unmarshal(pair[0], &a.status)
		json.Unmarshal(pair[1], &a.lines)
		out[k] = a
	}
	return out
}

// first returns the value after key among the lines ("KEY value").
func (a qAnswer) first(key string) string {
	for _, l := range a.lines {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			return v
		}
	}
	return ""
}

func (a qAnswer) all(key string) []string {
	var out []string
	for _, l := range a.lines {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			out = append(out, v)
		}
	}
	return out
}

var qFetchRE = regexp.MustCompile(`UID (\d+)|MODSEQ \((\d+)\)|FLAGS \(([^)]*)\)`)

// qFetched returns UID -> (modseq, flags) of FETCH lines.
func qFetched(lines []string) map[uint32][2]string {
	res := map[uint32][2]string{}
	for _, l := range lines {
		var uid uint32
		var it [2]string
		for _, m := range qFetchRE.FindAllStringSubmatch(l, -1) {
			switch {
			case m[1] != "":
				n, _ := strconv.ParseUint(m[1], 10, 32)
				uid = uint32(n)
			case m[2] != "":
				it[0] = m[2]
			default:
				it[1] = m[3]
			}
		}
		if uid != 0 {
			res[uid] = it
		}
	}
	return res
}

// TestPythonQResync: a client that enabled QRESYNC is told of a retention
// deletion by VANISHED, not EXPUNGE; after another session flags two
// messages and a new message arrives, UID FETCH (CHANGEDSINCE m VANISHED)
// and SELECT (QRESYNC (uidvalidity m)) both return the deleted UID as
// VANISHED (EARLIER) and exactly the flagged and the new message, each
// with a MODSEQ above m; known-uids narrows both; another UIDVALIDITY
// gets nothing. Without ENABLE QRESYNC the parameter and the modifier are
// BAD.
func TestPythonQResync(t *testing.T) {
	bin := needTool(t, "python3")
	f := newFixture(t, 8, false)
	ctx := context.Background()
	script := filepath.Join(t.TempDir(), "qresync.py")
	writeFile(t, script, qresyncScript)
	host, port, _ := net.SplitHostPort(f.addr)
	u1, u2, gone := f.inbox[1].uid, f.inbox[4].uid, f.inbox[6].uid

	// The state the client resynchronises from, as it would remember it
	// from an earlier session (phase 1 checks the server says the same).
	snap0, err := f.acme.Snapshot("alice@acme.example", inboxID(t, f))
	if err != nil {
		t.Fatal(err)
	}
	m0, err := f.acme.HighestModSeq("alice@acme.example", inboxID(t, f))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, script, host, port, "alice@acme.example", password, fmt.Sprint(u1), fmt.Sprint(u2),
		fmt.Sprint(m0), fmt.Sprint(snap0.UIDValidity), fmt.Sprintf("%d,%d", f.inbox[0].uid, f.inbox[1].uid))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	next := func() map[string]qAnswer {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("python ended early: %v", lines.Err())
		}
		return qAnswers(t, lines.Text())
	}

	p1 := next()
	if a := p1["select_not_enabled"]; !strings.HasPrefix(a.status, "BAD") {
		t.Errorf("SELECT (QRESYNC ...) before ENABLE: %v, want BAD", a)
	}
	if a := p1["vanished_not_enabled"]; !strings.HasPrefix(a.status, "BAD") {
		t.Errorf("UID FETCH (CHANGEDSINCE 1 VANISHED) before ENABLE: %v, want BAD", a)
	}
	t.Logf("capabilities: %s", p1["caps"].status)
	if a := p1["caps"]; !slices.Contains(strings.Fields(a.status), "QRESYNC") {
		t.Errorf("capabilities %q lack QRESYNC", a.status)
	}
	if a := p1["enable"]; !slices.Contains(a.lines, "ENABLED QRESYNC") {
		t.Errorf("ENABLE QRESYNC: %v", a)
	}
	if a := p1["select"]; a.first("HIGHESTMODSEQ") != fmt.Sprint(m0) {
		t.Errorf("SELECT INBOX: %v, want HIGHESTMODSEQ %d", a, m0)
	}

	// A new message arrives, and retention deletes one.
	g := mailgen.New(99, []string{"acme.example"}, 2)
	arrived := f.ingest(t, f.acme, "alice@acme.example", "INBOX", []mailgen.Message{g.Next()})[0].uid
	var mid uint64
	for i, u := range snap0.UIDs {
		if u == gone {
			mid = snap0.MIDs[i]
		}
	}
	if _, err := f.acme.SetRetentionPolicies(ctx, "carol@acme.example", []backend.Policy{{Name: "none"}}); err != nil {
		t.Fatal(err)
	}
	req := backend.DeleteRequest{Mailboxes: []string{"alice@acme.example"}, Folders: []string{"INBOX"}, MIDs: []uint64{mid}}
	dry, err := f.acme.DryRun(ctx, req)
	if err != nil || dry.Placements != 1 {
		t.Fatalf("dry run %+v %v: want the one placement", dry, err)
	}
	if rep, err := f.acme.Delete(ctx, "carol@acme.example", req, dry.Token); err != nil || rep.Placements != 1 {
		t.Fatalf("delete %+v %v", rep, err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	p2 := next()

	noop := p2["noop"]
	if v := noop.all("VANISHED"); !slices.Equal(v, []string{fmt.Sprint(gone)}) || len(noop.all("EXPUNGE")) > 0 {
		t.Errorf("NOOP after the deletion: %v, want VANISHED %d and no EXPUNGE", noop, gone)
	}
	check := func(name string, a qAnswer, vanished string, want ...uint32) {
		t.Helper()
		if !strings.HasPrefix(a.status, "OK") {
			t.Errorf("%s: %v", name, a)
			return
		}
		if v := a.all("VANISHED"); vanished == "" && len(v) > 0 || vanished != "" && !slices.Equal(v, []string{"(EARLIER) " + vanished}) {
			t.Errorf("%s: VANISHED %q, want (EARLIER) %q", name, v, vanished)
		}
		got := qFetched(a.all("FETCH"))
		var uids []uint32
		for uid, it := range got {
			uids = append(uids, uid)
			if ms, _ := strconv.ParseUint(it[0], 10, 64); ms <= m0 {
				t.Errorf("%s: UID %d MODSEQ %s, want above %d", name, uid, it[0], m0)
			}
		}
		slices.Sort(uids)
		if !slices.Equal(uids, want) {
			t.Errorf("%s: FETCH of UIDs %v, want %v: %v", name, uids, want, a.lines)
		}
		for _, u := range []uint32{u1, u2} {
			if it, ok := got[u]; ok && !strings.Contains(it[1], `\Flagged`) {
				t.Errorf("%s: UID %d flags %q", name, u, it[1])
			}
		}
	}
	check("UID FETCH (CHANGEDSINCE VANISHED)", p2["changed"], fmt.Sprint(gone), u1, u2, arrived)
	if a := p2["fetch_seq_vanished"]; !strings.HasPrefix(a.status, "BAD") {
		t.Errorf("FETCH (not UID) with VANISHED: %v, want BAD", a)
	}
	check("SELECT (QRESYNC)", p2["resync"], fmt.Sprint(gone), u1, u2, arrived)
	known := p2["resync_known"]
	if !slices.Contains(known.lines, "CLOSED ") && !slices.ContainsFunc(known.lines, func(l string) bool { return strings.HasPrefix(l, "CLOSED") }) {
		t.Errorf("EXAMINE while selected: %v, want OK [CLOSED]", known)
	}
	check("EXAMINE (QRESYNC known-uids)", known, "", u1, u2) // the deleted UID is above u2
	check("EXAMINE (QRESYNC other UIDVALIDITY)", p2["resync_other_uidvalidity"], "")
	if stdin.Close(); cmd.Wait() != nil {
		t.Errorf("python: %v", cmd.ProcessState)
	}
}

func inboxID(t *testing.T, f *fixture) uint64 {
	t.Helper()
	own := f.acme.Readable("alice@acme.example")[0]
	fi, err := f.acme.FolderByName("alice@acme.example", own.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return fi.ID
}
